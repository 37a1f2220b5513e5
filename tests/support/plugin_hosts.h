// plugin_hosts.h — finds the memos-plugin-host processes a parent started,
// for tests that kill one from outside (as the OOM killer or an operator
// would) to see what the parent makes of it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace memos::testing {

// The live memos-plugin-host children of `parent` whose command line names
// `plugin` (any, when empty), in no particular order. Zombies are left out
// (their executable can no longer be read).
inline std::vector<pid_t> plugin_hosts(pid_t parent, std::string_view plugin = {}) {
  namespace fs = std::filesystem;
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // "pid (comm) state ppid ...": comm may hold spaces, so read after ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = -1;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::error_code ec;
    const fs::path exe = fs::read_symlink(entry.path() / "exe", ec);
    if (ec || exe.filename() != "memos-plugin-host") continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    if (args.find(plugin) != std::string::npos) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace memos::testing
