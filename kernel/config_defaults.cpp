// The defaults of memosd.conf that depend on where memosd runs from and as
// whom (config.h): the data folder, the plugin folders, the plugin host.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "kernel/config.h"
#include "kernel/install_layout.h"

namespace memos::kernel {

std::string default_data_dir() {
  if (geteuid() == 0) return "/var/lib/memosd";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/memosd";
  }
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/memosd";
}

std::vector<std::string> default_plugin_paths() {
  // Beside the binary: the build tree (build/kernel/memosd -> build/plugins)
  // and the installed layout (bin/ -> lib/memosd/plugins).
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  auto base = exe.parent_path().parent_path();
  std::vector<std::string> paths = {(base / "plugins").string(),
                                    (base / "lib" / "memosd" / "plugins").string()};
  // An install whose LIBDIR is not lib/ (lib/x86_64-linux-gnu/ when
  // configured for the prefix /usr).
  if (auto lib = installed_lib_dir(); !lib.empty() && (lib / "plugins").string() != paths[1]) {
    paths.push_back((lib / "plugins").string());
  }
  return paths;
}

std::string default_plugin_host() {
  // Beside memosd in the build tree; LIBDIR/memosd/ when installed.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  auto beside = exe.parent_path() / "memos-plugin-host";
  auto lib = installed_lib_dir();
  auto installed = (lib.empty() ? exe.parent_path().parent_path() / "lib" / "memosd" : lib) /
                   "memos-plugin-host";
  return (std::filesystem::exists(beside, ec) ? beside : installed).string();
}

}  // namespace memos::kernel
