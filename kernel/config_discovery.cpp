#include "kernel/config_discovery.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "kernel/install_layout.h"

namespace memos::kernel {
namespace {

// Absent only when nothing is there; a file that exists but cannot be
// checked (EACCES on a parent) counts as there, and its load says why.
bool exists(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) return true;
  return errno != ENOENT && errno != ENOTDIR;
}

}  // namespace

std::string user_config_path() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && xdg[0] == '/') {
    return std::string(xdg) + "/memosd/memosd.conf";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.config/memosd/memosd.conf";
  }
  return "";
}

std::string system_config_path() {
  // An installed memosd reads its own install's file (the prefix is known
  // only at install time: install_layout.h); one run from the build tree
  // reads the one its build would install.
  if (auto installed = installed_config_file(); !installed.empty()) return installed.string();
  return MEMOS_SYSCONFDIR "/memosd/memosd.conf";
}

ConfigChoice choose_config_file(const std::string& named) {
  ConfigChoice choice;
  if (!named.empty()) {
    choice.path = named;
    choice.why = "named by --config";
    return choice;
  }
  if (geteuid() != 0) {
    if (std::string user = user_config_path(); !user.empty()) {
      choice.tried.push_back(user);
      if (exists(user)) {
        choice.path = user;
        choice.why = "the user's";
        return choice;
      }
    }
  }
  std::string system = system_config_path();
  choice.tried.push_back(system);
  if (exists(system)) {
    choice.path = system;
    choice.why = geteuid() == 0 ? "the system's (root reads no user file)" : "the system's";
    return choice;
  }
  choice.why = geteuid() == 0 ? "no file (root reads no user file)" : "no file";
  return choice;
}

std::string default_policies_dir(const std::string& config_path) {
  std::string beside = config_path;
  if (beside.empty()) beside = geteuid() == 0 ? system_config_path() : user_config_path();
  if (beside.empty()) return "";
  auto slash = beside.rfind('/');
  return (slash == std::string::npos ? std::string(".") : beside.substr(0, slash)) + "/tenants.d";
}

std::string describe(const ConfigChoice& choice) {
  if (!choice.path.empty()) return "configuration " + choice.path + " (" + choice.why + ")";
  std::string text = "configuration: " + choice.why + "; the built-in defaults apply (looked for ";
  for (std::size_t i = 0; i < choice.tried.size(); ++i) {
    if (i) text += ", ";
    text += choice.tried[i];
  }
  return text + ")";
}

}  // namespace memos::kernel
