// nats_connection.h — a client connection to a NATS server, speaking NATS's
// text protocol over TCP: publish (with headers), subscribe, and
// request/reply through one inbox subscription. JetStream (jetstream.h) is
// requests on top of it.
//
// Calls block and are safe from any thread. One reader thread per connection
// parses what the server sends and hands messages to subscriptions (on that
// thread: a handler must not block) and replies to the requests waiting for
// them. The reader pings a server that has been silent for `ping_interval`
// and drops the connection when the pong does not come within another: a
// partitioned server is noticed within two intervals, not at TCP's timeout.
//
// A lost connection fails the requests waiting on it; the next call
// reconnects, trying every server in turn, and subscribes again.
//
// With NatsOptions::tls, the connection turns to TLS after the server's
// INFO, as NATS's protocol has it, before CONNECT: the server's certificate
// is checked against the CA and the host dialled, and the node's own is
// shown when the server asks (tls_stream.h, which says its errors; all are
// unavailable here).
//
// Errors (store::Status): unavailable — no server could be reached, the
// connection was lost, or the reply did not come in time (retryable);
// corrupt — the server broke the protocol (the connection is dropped);
// too large a message is refused before it is sent (conflict, naming the
// server's max_payload).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "memcube/store_types.h"

namespace memos::cluster {

using store::Errc;
using store::Status;

using Headers = std::vector<std::pair<std::string, std::string>>;

// The first header of that name (exact case), or "".
std::string find_header(const Headers& headers, std::string_view name);

struct NatsMessage;
class TlsContext;  // tls_stream.h
// A header block ("NATS/1.0[ code text]\r\nK: V\r\n...\r\n") into
// `out`'s status and headers. False if it is malformed.
bool parse_header_block(std::string_view block, NatsMessage* out);

struct NatsMessage {
  std::string subject;
  std::string reply;  // "" when the sender wants none
  // From a header block's status line ("NATS/1.0 404 Message Not Found"):
  // 0 when it has none.
  int status = 0;
  std::string status_text;
  Headers headers;
  std::string data;

  std::string header(std::string_view name) const { return find_header(headers, name); }
};

struct NatsOptions {
  // "nats://host:port" or "host:port", tried in order.
  std::vector<std::string> servers;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds ping_interval{1000};
  // The most bytes one message from the server may carry; a larger one is a
  // protocol error (a hostile or broken server cannot make us allocate more).
  std::size_t max_incoming_bytes = 64u << 20;
  std::string name = "memosd";  // shown in the server's connection list
  // Set: every server is spoken to over TLS (tls_stream.h), and one that
  // does not offer it is refused. Unset: a server that requires TLS is
  // refused.
  std::shared_ptr<const TlsContext> tls;
};

class NatsConnection {
 public:
  // Connects to the first server that answers (CONNECT, then PING/PONG).
  // Errors: unavailable (none answered; the message names each server's
  // failure), corrupt.
  static std::unique_ptr<NatsConnection> connect(NatsOptions options, Status* status);
  ~NatsConnection();  // closes; waiting requests fail with unavailable
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // Sends a message. Errors: unavailable, conflict (larger than the server's
  // max_payload).
  Status publish(std::string_view subject, std::string_view data, const Headers& headers = {});
  // Sends a message and waits up to `timeout` for its reply. A request no
  // one subscribes to is answered unavailable at once (the server's
  // no-responders status). Errors: unavailable, conflict (too large).
  Status request(std::string_view subject, std::string_view data, const Headers& headers,
                 std::chrono::milliseconds timeout, NatsMessage* reply);
  // request() in two halves, so that a caller keeps several requests in
  // flight (an upload's chunks, in order on this one connection): send_request
  // sends and names the request in `*token`; await_reply waits for its reply
  // and forgets it, as does forget() for one whose reply is no longer wanted.
  // Every token must be awaited or forgotten. Errors: as request().
  // With `timed_out` given, a wait that times out sets it and leaves the
  // request waiting (await it again, or forget it); else it forgets it.
  Status send_request(std::string_view subject, std::string_view data, const Headers& headers,
                      std::uint64_t* token);
  Status await_reply(std::uint64_t token, std::chrono::milliseconds timeout, NatsMessage* reply,
                     bool* timed_out = nullptr);
  void forget(std::uint64_t token);
  // Delivers every message on `subject` (wildcards allowed) to `handler` on
  // the reader thread, from now until unsubscribe(*sid) or the connection's
  // end, across reconnections (messages sent while disconnected are
  // missed). Once unsubscribe returns, the handler is not running and never
  // runs again (unless the handler itself called it). Errors: unavailable
  // (the subscription is kept and made on reconnection).
  Status subscribe(std::string_view subject, std::function<void(NatsMessage&&)> handler,
                   std::uint64_t* sid = nullptr);
  void unsubscribe(std::uint64_t sid);

  // The server's limit on one message's headers and data.
  std::size_t max_payload() const;
  // The server answered a ping within `timeout` (reconnects if needed).
  Status flush(std::chrono::milliseconds timeout);

 private:
  struct Session;  // one TCP connection and its reader thread
  explicit NatsConnection(NatsOptions options);
  // Connects if not connected; returns the current session. Errors: unavailable.
  Status ensure_session(std::shared_ptr<Session>* out);
  Status open_session(const std::string& server, std::shared_ptr<Session>* out);
  void read_loop(const std::shared_ptr<Session>& session);
  void dispatch(NatsMessage&& message, std::uint64_t sid);
  void end_session(const std::shared_ptr<Session>& session, const Status& why);
  Status send_message(std::string_view subject, std::string_view reply, std::string_view data,
                      const Headers& headers);
  static Status send_all(Session& session, std::string_view bytes);

  const NatsOptions options_;
  std::string inbox_prefix_;  // "_INBOX.<random>."
  std::mutex connect_mutex_;  // one reconnection at a time

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable replies_;
  std::shared_ptr<Session> session_;
  std::vector<std::shared_ptr<Session>> retired_;  // ended; their threads not yet joined
  std::uint64_t next_token_ = 1;
  struct Pending {
    bool done = false;
    Status status;
    NatsMessage reply;
  };
  std::map<std::uint64_t, std::shared_ptr<Pending>> pending_;
  struct Subscription {
    std::string subject;
    std::function<void(NatsMessage&&)> handler;
  };
  std::map<std::uint64_t, Subscription> subscriptions_;  // by sid (1 is the inbox)
  std::uint64_t next_sid_ = 2;
  std::uint64_t pongs_ = 0;        // pongs received, for flush
  std::uint64_t dispatching_ = 0;  // the subscription whose handler runs now
  std::thread::id reader_id_;      // the current session's reader
  std::size_t max_payload_ = 1u << 20;
  bool closing_ = false;
};

}  // namespace memos::cluster
