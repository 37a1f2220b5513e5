// byte_stream.h — one connection to an engine (nats_connection.h,
// etcd_client.h): a connected TCP socket, in the clear or, once
// start_tls() succeeded, through a TlsStream (tls_stream.h). The clients
// speak their protocols over it without asking which: one way to write,
// one way to wait for and read what arrived, one way to wake a reader.
//
// Threads: one reader and any writers may use a stream at once (a writer's
// bytes are kept whole by its caller's lock); shut() from any thread.
//
// Errors (store::Status): start_tls — TlsStream::handshake's; write_all —
// unavailable (the connection failed or was shut); read_some — unavailable
// ("the server closed the connection", or why it failed).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/tls_stream.h"

namespace memos::cluster {

class ByteStream {
 public:
  // Owns `fd`, a connected TCP socket (tcp_dial).
  explicit ByteStream(int fd) : fd_(fd) {}
  // The TLS session first, then the descriptor it writes to.
  ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  // Turns the stream to TLS: the client's handshake with the server's
  // certificate checked against `host`, done before `deadline`. Before any
  // other thread uses the stream.
  Status start_tls(std::shared_ptr<const TlsContext> context, const std::string& host,
                   std::chrono::steady_clock::time_point deadline);
  bool secure() const { return tls_ != nullptr; }

  // Writes all of `bytes`, waiting for room as needed.
  Status write_all(std::string_view bytes);
  // Waits up to `wait` for bytes, then reads what arrived, up to `size`.
  // `*got` 0 with `*timed_out`: nothing came within `wait`; without it:
  // bytes came that do not make a whole TLS record yet (call again).
  Status read_some(char* into, std::size_t size, std::chrono::milliseconds wait, std::size_t* got,
                   bool* timed_out);
  // Ends a reader's wait and every later call with an error, without
  // closing the descriptor under them.
  void shut();

 private:
  const int fd_;
  std::unique_ptr<TlsStream> tls_;  // set by start_tls()
};

}  // namespace memos::cluster
