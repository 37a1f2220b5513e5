#include "kernel/systemd.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

namespace memos::kernel::systemd {

void notify(const std::string& state) {
  sd_notify(0, state.c_str());
}

std::uint64_t watchdog_usec() {
  std::uint64_t usec = 0;
  return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

int listening_socket(std::string* error) {
  int n = sd_listen_fds(1);  // 1: unset LISTEN_FDS so children do not inherit it
  if (n <= 0) return -1;
  if (n > 1) {
    *error = "systemd passed " + std::to_string(n) + " sockets; memosd listens on one";
    return -2;
  }
  if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, nullptr, 0) <= 0) {
    *error = "the socket systemd passed is not a listening Unix stream socket";
    return -2;
  }
  return SD_LISTEN_FDS_START;
}

}  // namespace memos::kernel::systemd
