#include "ipc/unix_peer.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace memos::ipc {

std::optional<PeerCredentials> peer_credentials(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
    return std::nullopt;
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

std::string default_socket_path() {
  if (geteuid() == 0) return "/run/memosd/memosd.sock";
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    return std::string(runtime) + "/memosd.sock";
  }
  return "/tmp/memosd-" + std::to_string(geteuid()) + "/memosd.sock";
}

}  // namespace memos::ipc
