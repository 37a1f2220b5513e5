#include "cluster/tls_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

namespace memos::cluster {
namespace {

// OpenSSL writes to the socket with write(), which raises SIGPIPE on a
// connection the server reset. The daemon ignores SIGPIPE, but this
// library must not kill a program that does not: the signal is blocked on
// this thread for the call and, if raised, taken before it is unblocked.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec now{};
      while (sigtimedwait(&pipe, nullptr, &now) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// A PEM file is small and regular: OpenSSL would read /dev/zero or a fifo
// forever.
constexpr off_t kMaxPemBytes = 1 << 20;

Status check_readable(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
    return {Errc::io, std::string(what) + " " + path + ": " + std::strerror(errno)};
  }
  if (!S_ISREG(st.st_mode)) return {Errc::corrupt, std::string(what) + " " + path + ": not a file"};
  if (st.st_size > kMaxPemBytes) {
    return {Errc::corrupt, std::string(what) + " " + path + ": over 1 MiB, not a PEM file"};
  }
  return {};
}

// Waits for `events` on `fd` until `deadline` (forever when it is max()).
// False when the time ran out or the descriptor failed.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      timeout = static_cast<int>(std::min<long long>(left.count(), INT_MAX));
    }
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, timeout);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    // An error or hang-up is for the next SSL call to report.
    return true;
  }
}

// The connected peer's "address:port", "" if the socket cannot say.
std::string peer_address(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  unsigned port = 0;
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    port = ntohs(v6->sin6_port);
  } else {
    return {};
  }
  return std::string(host) + ":" + std::to_string(port);
}

// OpenSSL's reasons queued on this thread, for an error message.
std::string openssl_reasons() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof(text));
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : text;
  }
  return out.empty() ? std::string("the connection failed") : out;
}

}  // namespace

Status TlsContext::open(const TlsFiles& files, std::shared_ptr<const TlsContext>* out) {
  if (files.cert.empty() != files.key.empty()) {
    return {Errc::conflict, "a TLS certificate needs its key, and a key its certificate"};
  }
  for (const auto& [path, what] :
       {std::pair{&files.ca, "CA file"}, std::pair{&files.cert, "certificate file"},
        std::pair{&files.key, "key file"}}) {
    if (path->empty()) continue;
    if (Status s = check_readable(*path, what); !s.ok()) return s;
  }
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return {Errc::io, "TLS: " + openssl_reasons()};
  std::shared_ptr<const TlsContext> made(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!files.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, files.ca.c_str(), nullptr) != 1) {
      return {Errc::corrupt, "CA file " + files.ca + ": " + openssl_reasons()};
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return {Errc::io, "the system's trusted certificates: " + openssl_reasons()};
  }
  if (!files.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1) {
      return {Errc::corrupt, "certificate file " + files.cert + ": " + openssl_reasons()};
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return {Errc::corrupt, "key file " + files.key + ": " + openssl_reasons()};
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return {Errc::corrupt,
              "key file " + files.key + " does not match certificate file " + files.cert};
    }
  }
  *out = std::move(made);
  return {};
}

TlsContext::~TlsContext() {
  for (auto& [peer, session] : sessions_) SSL_SESSION_free(session);
  SSL_CTX_free(ctx_);
}

SSL_SESSION* TlsContext::session_for(const std::string& peer) const {
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION_up_ref(it->second);
  return it->second;
}

void TlsContext::keep_session(const std::string& peer, SSL_SESSION* session) const {
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(peer);
  if (it != sessions_.end()) {
    SSL_SESSION_free(it->second);
    it->second = session;
    return;
  }
  if (sessions_.size() >= kMaxSessions) {
    SSL_SESSION_free(sessions_.begin()->second);
    sessions_.erase(sessions_.begin());
  }
  sessions_.emplace(peer, session);
}

Status TlsStream::handshake(std::shared_ptr<const TlsContext> context, int fd,
                            const std::string& host, std::chrono::steady_clock::time_point deadline,
                            std::unique_ptr<TlsStream>* out) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return {Errc::unavailable, std::string("TLS: ") + std::strerror(errno)};
  }
  ERR_clear_error();
  SSL* ssl = SSL_new(context->ctx_);
  if (ssl == nullptr) return {Errc::unavailable, "TLS: " + openssl_reasons()};
  // A session is kept for the name checked as well as the address: one
  // made with another name's certificate is never offered.
  const std::string dialled = peer_address(fd);
  const std::string peer = dialled.empty() ? "" : host + "@" + dialled;
  SSL_SESSION* kept = peer.empty() ? nullptr : context->session_for(peer);
  std::unique_ptr<TlsStream> stream(new TlsStream(std::move(context), ssl, fd, peer));
  SSL_set_fd(ssl, fd);
  if (kept != nullptr) {
    // Offered, not trusted: a server that does not know it runs the full
    // handshake, certificate checks included.
    SSL_set_session(ssl, kept);
    SSL_SESSION_free(kept);
  }
  // The certificate must name what was dialled: an address for a numeric
  // host, else the DNS name (sent as SNI too).
  in6_addr address{};
  const bool numeric = ::inet_pton(AF_INET, host.c_str(), &address) == 1 ||
                       ::inet_pton(AF_INET6, host.c_str(), &address) == 1;
  const bool named =
      numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1
              : SSL_set1_host(ssl, host.c_str()) == 1 &&
                    // SSL_set_tlsext_host_name(), without its C cast.
                    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                             const_cast<char*>(host.c_str())) == 1;
  if (!named) return {Errc::unavailable, "TLS: the host " + host + ": " + openssl_reasons()};
  SigpipeBlocked quiet;
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl);
    if (rc == 1) break;
    const int error = SSL_get_error(ssl, rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      if (!wait_for(fd, error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        return {Errc::unavailable, "TLS handshake: no answer in time"};
      }
      continue;
    }
    if (const long verified = SSL_get_verify_result(ssl); verified != X509_V_OK) {
      return {Errc::unavailable, "TLS: the server's certificate was refused: " +
                                     std::string(X509_verify_cert_error_string(verified))};
    }
    if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      return {Errc::unavailable,
              "TLS handshake: the server closed the connection (does it speak TLS, and "
              "accept this node's certificate?)"};
    }
    return {Errc::unavailable, "TLS handshake: " + openssl_reasons()};
  }
  *out = std::move(stream);
  return {};
}

TlsStream::~TlsStream() {
  // The session is kept only from a connection the server closed cleanly
  // (its close_notify came): OpenSSL marks one that ended otherwise as not
  // to be resumed, since its end may have been forged. Under TLS 1.3 the
  // server's ticket comes after the handshake, with the first bytes read,
  // so the session is taken as the connection ends.
  if (!peer_.empty() && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0) {
    {
      SigpipeBlocked quiet;
      SSL_shutdown(ssl_);  // this side's close_notify, if the socket still takes it
    }
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_SESSION* session = SSL_get1_session(ssl_);
    if (session != nullptr && SSL_SESSION_is_resumable(session) == 1) {
      context_->keep_session(peer_, session);
    } else if (session != nullptr) {
      SSL_SESSION_free(session);
    }
  }
  SSL_free(ssl_);
}

Status TlsStream::write_all(std::string_view bytes) {
  // One write at a time: a write OpenSSL could not finish must be retried
  // with the same bytes before another starts.
  std::lock_guard writing(write_mutex_);
  SigpipeBlocked quiet;
  while (!bytes.empty()) {
    int error;
    {
      std::lock_guard lock(mutex_);
      ERR_clear_error();
      std::size_t written = 0;
      if (SSL_write_ex(ssl_, bytes.data(), bytes.size(), &written) == 1) {
        bytes.remove_prefix(written);
        continue;
      }
      error = SSL_get_error(ssl_, 0);
    }
    const auto forever = std::chrono::steady_clock::time_point::max();
    if (error == SSL_ERROR_WANT_WRITE) {
      if (!wait_for(fd_, POLLOUT, forever)) return {Errc::unavailable, "TLS: the socket failed"};
    } else if (error == SSL_ERROR_WANT_READ) {
      // A handshake message to read first; the reader thread may take it,
      // so wait only briefly before trying again.
      wait_for(fd_, POLLIN, std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
    } else {
      return {Errc::unavailable, "TLS: " + openssl_reasons()};
    }
  }
  return {};
}

Status TlsStream::read_some(char* into, std::size_t size, std::size_t* got) {
  *got = 0;
  SigpipeBlocked quiet;
  std::lock_guard lock(mutex_);
  ERR_clear_error();
  std::size_t read = 0;
  if (SSL_read_ex(ssl_, into, size, &read) == 1) {
    *got = read;
    return {};
  }
  switch (SSL_get_error(ssl_, 0)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return {};
    case SSL_ERROR_ZERO_RETURN:
      return {Errc::unavailable, "the server closed the connection"};
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        return {Errc::unavailable,
                errno == 0 ? "the server closed the connection" : std::strerror(errno)};
      }
      [[fallthrough]];
    default:
      return {Errc::unavailable, "TLS: " + openssl_reasons()};
  }
}

bool TlsStream::pending() const {
  std::lock_guard lock(mutex_);
  return SSL_pending(ssl_) > 0;
}

bool TlsStream::resumed() const {
  std::lock_guard lock(mutex_);
  return SSL_session_reused(ssl_) == 1;
}

}  // namespace memos::cluster
