#include "kernel/user_namespace.h"

#include <cstdint>
#include <fstream>
#include <sstream>

namespace memos::kernel {
namespace {

std::optional<std::string> read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::uint32_t read_id(const char* path, std::uint32_t fallback) {
  std::ifstream in(path);
  std::uint64_t value = 0;
  if (in >> value && value <= UINT32_MAX) return static_cast<std::uint32_t>(value);
  return fallback;
}

std::string one_line(std::string text) {
  std::string out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string joined, word;
    while (words >> word) joined += (joined.empty() ? "" : " ") + word;
    if (joined.empty()) continue;
    out += (out.empty() ? "" : "; ") + joined;
  }
  return out;
}

}  // namespace

bool is_full_identity_map(const std::string& map) {
  std::istringstream in(map);
  std::uint64_t inside = 1, outside = 1, count = 0;
  if (!(in >> inside >> outside >> count)) return false;
  std::string rest;
  if (in >> rest) return false;  // more than one range
  return inside == 0 && outside == 0 && count == 4294967295ull;
}

UserNamespace UserNamespace::current() {
  UserNamespace ns;
  if (auto uids = read_text("/proc/self/uid_map")) {
    ns.uid_map = one_line(*uids);
    ns.uids_complete = is_full_identity_map(*uids);
  }
  if (auto gids = read_text("/proc/self/gid_map")) ns.gids_complete = is_full_identity_map(*gids);
  ns.overflow_uid = read_id("/proc/sys/kernel/overflowuid", 65534);
  ns.overflow_gid = read_id("/proc/sys/kernel/overflowgid", 65534);
  return ns;
}

std::string UserNamespace::unmapped_peer(uid_t uid, gid_t gid) const {
  bool uid_hidden = !uids_complete && uid == overflow_uid;
  bool gid_hidden = !gids_complete && gid == overflow_gid;
  if (!uid_hidden && !gid_hidden) return "";
  return std::string("your ") + (uid_hidden ? "uid" : "gid") +
         " is not visible in memosd's user namespace (it reads as the overflow " +
         (uid_hidden ? "uid " + std::to_string(overflow_uid)
                     : "gid " + std::to_string(overflow_gid)) +
         ", shared by every unmapped user), so memosd cannot tell you from other users and "
         "refuses the connection; run memosd in the initial user namespace (no PrivateUsers=)";
}

std::string UserNamespace::start_warning() const {
  if (uids_complete) return "";
  return "memosd runs in a user namespace that does not map the full uid range (uid_map: " +
         (uid_map.empty() ? std::string("empty") : uid_map) +
         "): every client uid it does not map reads as the overflow uid " +
         std::to_string(overflow_uid) +
         " and is refused, since those users could not be told apart; run memosd in the initial "
         "user namespace (no PrivateUsers=) to serve every local user";
}

}  // namespace memos::kernel
