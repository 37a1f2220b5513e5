// tls_stream.h — TLS on a connected TCP socket, for the engines' clients
// (nats_connection.h, etcd_client.h). The log, the blobs and forwarded
// writes cross the engines, so whoever reads or writes their traffic reads
// every record and can append any tenant's rows: TLS with the cluster's CA
// and a certificate per node (mutual TLS, which nats-server and etcd both
// verify) is what lets the engines run off a private network
// (memos-cluster(7), "TLS").
//
// A TlsContext holds the files once (the CA that signs the servers'
// certificates, and the node's certificate and key), and the last session
// each server gave it, so that the next connection to that server resumes
// it (an abbreviated handshake: no certificates sent or checked again, the
// peer having been checked when the session was made). The etcd client
// connects once per call, so resuming saves it a full handshake a call. A
// TlsStream is one connection's session. The server's certificate must chain to the CA and
// name the host dialled (its DNS name, or its IP address for a numeric
// host); TLS 1.2 is the oldest spoken. A stream's calls may come from
// several threads (a reader and writers): one mutex serializes them, and
// no call blocks under it for want of bytes (the socket is non-blocking
// once the handshake is done; readers poll the descriptor, writers wait for
// room outside the lock).
//
// Errors (store::Status): TlsContext::open — io (a file that cannot be
// read), corrupt (not a regular file of at most 1 MiB, not a PEM
// certificate or key, or a key that does not
// match its certificate), conflict (a certificate without its key or the
// other way round); TlsStream::handshake — unavailable (the server's
// certificate refused, with OpenSSL's reason, or a handshake refused or
// not done by the deadline); write_all, read_some — unavailable (the
// connection failed or was closed).
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "memcube/store_types.h"

struct ssl_ctx_st;      // OpenSSL's SSL_CTX
struct ssl_st;          // OpenSSL's SSL
struct ssl_session_st;  // OpenSSL's SSL_SESSION

namespace memos::cluster {

using store::Errc;
using store::Status;

// PEM files. `ca` empty: the system's trusted certificates. `cert` and `key`
// both or neither (neither: no client certificate, for servers that ask
// for none).
struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

class TlsContext {
 public:
  // Loads and checks the files now, so that a wrong path fails at start.
  static Status open(const TlsFiles& files, std::shared_ptr<const TlsContext>* out);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

 private:
  friend class TlsStream;
  explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  // The session to resume with the server at `peer` ("host@address:port"), with
  // a reference the caller frees; nullptr for none.
  ssl_session_st* session_for(const std::string& peer) const;
  // Keeps `session` (the caller's reference passes to the context) for
  // `peer`, in place of any before it.
  void keep_session(const std::string& peer, ssl_session_st* session) const;

  ssl_ctx_st* const ctx_;
  // A few servers are configured; the bound only keeps a resolver that
  // answers new addresses forever from growing the map.
  static constexpr std::size_t kMaxSessions = 64;
  mutable std::mutex sessions_mutex_;
  mutable std::map<std::string, ssl_session_st*> sessions_;  // guarded by sessions_mutex_
};

class TlsStream {
 public:
  // Runs the client's handshake on `fd` (connected; left non-blocking),
  // checking the server's certificate against `host`, before `deadline`.
  // The stream does not own `fd`: close it after the stream is gone.
  static Status handshake(std::shared_ptr<const TlsContext> context, int fd,
                          const std::string& host, std::chrono::steady_clock::time_point deadline,
                          std::unique_ptr<TlsStream>* out);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Writes all of `bytes`, waiting for room in the socket as needed (a
  // shutdown() of the descriptor ends the wait with an error).
  Status write_all(std::string_view bytes);
  // Reads what has arrived, up to `size`: `*got` 0 means nothing whole yet
  // (poll the descriptor for input, then call again). A connection the
  // server closed is unavailable.
  Status read_some(char* into, std::size_t size, std::size_t* got);
  // Bytes decrypted and not yet read: read them before polling.
  bool pending() const;
  // Whether the handshake resumed a session the context kept.
  bool resumed() const;

 private:
  TlsStream(std::shared_ptr<const TlsContext> context, ssl_st* ssl, int fd, std::string peer)
      : context_(std::move(context)), ssl_(ssl), fd_(fd), peer_(std::move(peer)) {}

  const std::shared_ptr<const TlsContext> context_;  // outlives ssl_
  ssl_st* const ssl_;
  const int fd_;
  const std::string peer_;    // "host@address:port": its kept session's key
  mutable std::mutex mutex_;  // every call on ssl_
  std::mutex write_mutex_;    // one write_all() at a time
};

}  // namespace memos::cluster
