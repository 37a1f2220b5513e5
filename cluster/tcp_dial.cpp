#include "cluster/tcp_dial.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace memos::cluster {

bool split_host_port(std::string_view server, std::string* host, std::string* port) {
  for (std::string_view scheme : {"nats://", "http://", "tls://", "https://"}) {
    if (server.starts_with(scheme)) server.remove_prefix(scheme.size());
  }
  while (server.ends_with("/")) server.remove_suffix(1);
  auto colon = server.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == server.size()) return false;
  *host = std::string(server.substr(0, colon));
  *port = std::string(server.substr(colon + 1));
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return true;
}

int tcp_dial(const std::string& server, std::chrono::milliseconds timeout, std::string* why) {
  std::string host, port;
  if (!split_host_port(server, &host, &port)) {
    *why = "not host:port";
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *why = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      *why = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
      int err = 0;
      socklen_t len = sizeof(err);
      if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        rc = 0;
      } else {
        *why = rc == 0 ? "timed out" : std::strerror(err ? err : errno);
        rc = -1;
      }
    } else if (rc != 0) {
      *why = std::strerror(errno);
    }
    if (rc == 0) {
      // Blocking from here on: the reader thread polls before each read.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      // Each write is a whole message or request, sent at once: with
      // Nagle's algorithm a small write behind another unacknowledged one
      // (an HTTP request after a resumed TLS handshake's Finished) waits
      // for the server's delayed ACK, 40 ms (bench-etcd-tls measured it).
      const int on = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      break;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

}  // namespace memos::cluster
