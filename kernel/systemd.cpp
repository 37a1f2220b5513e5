#include "kernel/systemd.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace memos::kernel::systemd {

void notify(const std::string& state) {
  // sd_notify() sends on a blocking socket: a notification socket whose
  // queue is full would stall the event loop (and the watchdog pings with
  // it). Send without waiting instead; a message that does not fit is
  // dropped, as a late watchdog ping would be.
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t length = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || length >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, length);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // an abstract socket
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  (void)::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&addr), size);
  ::close(fd);
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
