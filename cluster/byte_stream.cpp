#include "cluster/byte_stream.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace memos::cluster {

ByteStream::~ByteStream() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

Status ByteStream::start_tls(std::shared_ptr<const TlsContext> context, const std::string& host,
                             std::chrono::steady_clock::time_point deadline) {
  return TlsStream::handshake(std::move(context), fd_, host, deadline, &tls_);
}

Status ByteStream::write_all(std::string_view bytes) {
  if (tls_) return tls_->write_all(bytes);
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {Errc::unavailable, std::strerror(errno)};
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Status ByteStream::read_some(char* into, std::size_t size, std::chrono::milliseconds wait,
                             std::size_t* got, bool* timed_out) {
  *got = 0;
  *timed_out = false;
  // Bytes TLS already decrypted are there without a byte on the socket.
  if (!tls_ || !tls_->pending()) {
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait.count(), 0)));
    if (rc < 0 && errno == EINTR) return {};
    if (rc < 0) return {Errc::unavailable, std::strerror(errno)};
    if (rc == 0) {
      *timed_out = true;
      return {};
    }
  }
  if (tls_) return tls_->read_some(into, size, got);
  const ssize_t n = ::recv(fd_, into, size, 0);
  if (n < 0 && errno == EINTR) return {};
  if (n < 0) return {Errc::unavailable, std::strerror(errno)};
  if (n == 0) return {Errc::unavailable, "the server closed the connection"};
  *got = static_cast<std::size_t>(n);
  return {};
}

void ByteStream::shut() {
  ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace memos::cluster
