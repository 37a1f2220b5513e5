// unix_peer.h — identity of the process on the other end of a Unix socket,
// and the default socket path shared by memosd and its clients.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace memos::ipc {

struct PeerCredentials {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};

// SO_PEERCRED of a connected Unix socket. Empty if the kernel refuses (the fd
// is not a Unix socket).
std::optional<PeerCredentials> peer_credentials(int fd);

// $XDG_RUNTIME_DIR/memosd.sock; as root /run/memosd/memosd.sock; for a user
// without XDG_RUNTIME_DIR, /tmp/memosd-UID/memosd.sock.
std::string default_socket_path();

}  // namespace memos::ipc
