#include "cluster/nats_connection.h"

#include "cluster/byte_stream.h"
#include "cluster/decimal.h"
#include "cluster/tcp_dial.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <random>

namespace memos::cluster {
namespace {

constexpr std::size_t kMaxControlLine = 64u << 10;

bool valid_subject(std::string_view subject) {
  if (subject.empty() || subject.size() > 1024) return false;
  for (char c : subject) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return true;
}

bool valid_header_text(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos;
}

// Splits a control line's arguments on spaces and tabs.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

bool parse_header_block(std::string_view block, NatsMessage* out) {
  auto line_end = block.find("\r\n");
  if (line_end == std::string_view::npos) return false;
  std::string_view first = block.substr(0, line_end);
  if (!first.starts_with("NATS/1.0")) return false;
  first.remove_prefix(8);
  while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
  if (!first.empty()) {
    int code = 0;
    std::size_t i = 0;
    while (i < first.size() && i < 3 && first[i] >= '0' && first[i] <= '9') {
      code = code * 10 + (first[i++] - '0');
    }
    if (i != 3) return false;
    out->status = code;
    first.remove_prefix(3);
    while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
    out->status_text = std::string(first);
  }
  block.remove_prefix(line_end + 2);
  while (!block.empty()) {
    line_end = block.find("\r\n");
    if (line_end == std::string_view::npos) return false;
    std::string_view line = block.substr(0, line_end);
    block.remove_prefix(line_end + 2);
    if (line.empty()) continue;  // the blank line that ends the block
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    out->headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return true;
}

std::string find_header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

// One TCP connection: its stream (TLS with NatsOptions::tls, once INFO
// offered it), the lock that keeps writes whole, and its reader thread.
struct NatsConnection::Session {
  std::unique_ptr<ByteStream> stream;
  std::string server;
  std::mutex write_mutex;
  std::thread reader;
  std::string buffer;  // reader thread only
  std::size_t pos = 0;

  // Waits up to `timeout` for bytes from the server and appends them to
  // buffer (perhaps none: a TLS record not whole yet). `*timed_out` when
  // nothing came. Errors: unavailable (closed, failed).
  Status receive(std::chrono::milliseconds timeout, bool* timed_out) {
    char chunk[65536];
    std::size_t got = 0;
    if (Status s = stream->read_some(chunk, sizeof(chunk), timeout, &got, timed_out); !s.ok())
      return s;
    buffer.append(chunk, got);
    return {};
  }
  // Wakes the reader (its read fails) without closing the descriptor under it.
  void shut() { stream->shut(); }
};

NatsConnection::NatsConnection(NatsOptions options) : options_(std::move(options)) {
  std::random_device random;
  std::uint64_t r = (std::uint64_t{random()} << 32) | random();
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(r));
  inbox_prefix_ = std::string("_INBOX.") + hex + ".";
}

std::unique_ptr<NatsConnection> NatsConnection::connect(NatsOptions options, Status* status) {
  if (options.servers.empty()) {
    *status = {Errc::unavailable, "no NATS server is configured"};
    return nullptr;
  }
  std::unique_ptr<NatsConnection> c(new NatsConnection(std::move(options)));
  std::shared_ptr<Session> session;
  *status = c->ensure_session(&session);
  if (!status->ok()) return nullptr;
  return c;
}

NatsConnection::~NatsConnection() {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    sessions.swap(retired_);
    if (session_) sessions.push_back(session_);
  }
  for (auto& session : sessions) {
    session->shut();
    if (session->reader.joinable()) session->reader.join();
  }
  std::lock_guard lock(mutex_);
  session_.reset();
}

std::size_t NatsConnection::max_payload() const {
  std::lock_guard lock(mutex_);
  return max_payload_;
}

Status NatsConnection::ensure_session(std::shared_ptr<Session>* out) {
  {
    std::lock_guard lock(mutex_);
    if (closing_) return {Errc::unavailable, "the NATS connection is closing"};
    if (session_) {
      *out = session_;
      return {};
    }
  }
  std::lock_guard connecting(connect_mutex_);
  std::vector<std::shared_ptr<Session>> retired;
  {
    std::lock_guard lock(mutex_);
    if (session_) {
      *out = session_;
      return {};
    }
    retired.swap(retired_);
  }
  for (auto& old : retired) {
    if (old->reader.joinable()) old->reader.join();  // it has ended, or is ending
  }
  std::string failures;
  for (const std::string& server : options_.servers) {
    std::shared_ptr<Session> session;
    Status s = open_session(server, &session);
    if (s.ok()) {
      std::lock_guard lock(mutex_);
      session_ = session;
      *out = session;
      return {};
    }
    failures += (failures.empty() ? "" : "; ") + server + ": " + s.message;
  }
  return {Errc::unavailable, "no NATS server answered (" + failures + ")"};
}

Status NatsConnection::send_all(Session& session, std::string_view bytes) {
  std::lock_guard lock(session.write_mutex);
  Status s = session.stream->write_all(bytes);
  if (!s.ok()) s.message = "NATS " + session.server + ": " + s.message;
  return s;
}

Status NatsConnection::open_session(const std::string& server, std::shared_ptr<Session>* out) {
  std::string why;
  int fd = tcp_dial(server, options_.connect_timeout, &why);
  if (fd < 0) return {Errc::unavailable, why};
  auto session = std::make_shared<Session>();
  session->stream = std::make_unique<ByteStream>(fd);
  session->server = server;
  // Each of the handshake's reads waits up to the connect timeout.
  auto read_line = [&](std::string* line) -> Status {
    for (;;) {
      auto end = session->buffer.find("\r\n", session->pos);
      if (end != std::string::npos) {
        *line = session->buffer.substr(session->pos, end - session->pos);
        session->pos = end + 2;
        return {};
      }
      if (session->buffer.size() - session->pos > kMaxControlLine) {
        return {Errc::corrupt, "a line longer than " + std::to_string(kMaxControlLine)};
      }
      bool timed_out = false;
      if (Status s = session->receive(options_.connect_timeout, &timed_out); !s.ok()) return s;
      if (timed_out) return {Errc::unavailable, "no answer in time"};
    }
  };
  std::string line;
  if (Status s = read_line(&line); !s.ok()) return s;
  if (!line.starts_with("INFO ")) return {Errc::corrupt, "did not start with INFO"};
  bool tls_offered = false;
  try {
    auto info = nlohmann::json::parse(line.substr(5));
    const bool required = info.value("tls_required", false);
    tls_offered = required || info.value("tls_available", false);
    if (required && !options_.tls) {
      return {Errc::unavailable,
              "requires TLS: set cluster.tls_ca (and cluster.tls_cert and cluster.tls_key if "
              "it asks for a client certificate)"};
    }
    std::lock_guard lock(mutex_);
    max_payload_ = info.value("max_payload", std::size_t{1} << 20);
  } catch (const nlohmann::json::exception& e) {
    return {Errc::corrupt, std::string("INFO is not JSON: ") + e.what()};
  }
  if (options_.tls) {
    // Never in the clear when TLS is configured: a server (or whoever
    // stands between) that does not offer it is refused.
    if (!tls_offered) return {Errc::unavailable, "does not offer TLS, which this node requires"};
    if (session->pos != session->buffer.size()) {
      return {Errc::corrupt, "sent more than INFO before the TLS handshake"};
    }
    std::string host, port;
    split_host_port(server, &host, &port);
    if (Status s = session->stream->start_tls(
            options_.tls, host, std::chrono::steady_clock::now() + options_.connect_timeout);
        !s.ok()) {
      return s;
    }
  }
  nlohmann::json hello = {{"verbose", false},      {"pedantic", false},    {"headers", true},
                          {"no_responders", true}, {"protocol", 1},        {"lang", "cpp"},
                          {"version", "memosd"},   {"name", options_.name}};
  std::string handshake = "CONNECT " + hello.dump() + "\r\nPING\r\n";
  // The inbox, then every subscription made so far (a reconnection).
  handshake += "SUB " + inbox_prefix_ + "* 1\r\n";
  {
    std::lock_guard lock(mutex_);
    for (const auto& [sid, sub] : subscriptions_) {
      handshake += "SUB " + sub.subject + " " + std::to_string(sid) + "\r\n";
    }
  }
  if (Status s = send_all(*session, handshake); !s.ok()) return s;
  for (;;) {
    if (Status s = read_line(&line); !s.ok()) return s;
    if (line == "PONG") break;
    if (line.starts_with("-ERR")) return {Errc::unavailable, "refused: " + line.substr(4)};
    if (line == "PING") {
      if (Status s = send_all(*session, "PONG\r\n"); !s.ok()) return s;
    }
  }
  session->reader = std::thread([this, session] { read_loop(session); });
  *out = std::move(session);
  return {};
}

void NatsConnection::read_loop(const std::shared_ptr<Session>& session) {
  {
    std::lock_guard lock(mutex_);
    reader_id_ = std::this_thread::get_id();
  }
  bool awaiting_pong = false;
  // Makes `want` bytes available from session->pos. Pings a silent server.
  auto fill = [&](std::size_t want) -> Status {
    while (session->buffer.size() - session->pos < want) {
      if (session->pos > 0 && session->pos == session->buffer.size()) {
        session->buffer.clear();
        session->pos = 0;
      } else if (session->pos > (1u << 20)) {
        session->buffer.erase(0, session->pos);
        session->pos = 0;
      }
      bool timed_out = false;
      if (Status s = session->receive(options_.ping_interval, &timed_out); !s.ok()) return s;
      if (timed_out) {
        if (awaiting_pong) return {Errc::unavailable, "the server stopped answering pings"};
        awaiting_pong = true;
        if (Status s = send_all(*session, "PING\r\n"); !s.ok()) return s;
        continue;
      }
      awaiting_pong = false;  // any byte shows the server is there
    }
    return {};
  };
  Status why;
  for (;;) {
    std::size_t end;
    for (;;) {
      end = session->buffer.find("\r\n", session->pos);
      if (end != std::string::npos) break;
      if (session->buffer.size() - session->pos > kMaxControlLine) {
        why = {Errc::corrupt, "a control line longer than " + std::to_string(kMaxControlLine)};
        break;
      }
      why = fill(session->buffer.size() - session->pos + 1);
      if (!why.ok()) break;
    }
    if (!why.ok()) break;
    const std::string line = session->buffer.substr(session->pos, end - session->pos);
    session->pos = end + 2;
    auto f = fields(line);
    if (f.empty()) continue;
    const std::string_view op = f[0];
    if (op == "PING") {
      if (why = send_all(*session, "PONG\r\n"); !why.ok()) break;
    } else if (op == "PONG") {
      std::lock_guard lock(mutex_);
      ++pongs_;
      replies_.notify_all();
    } else if (op == "+OK") {
    } else if (op == "-ERR") {
      spdlog::warn("NATS {}: {}", session->server, line.substr(4));
    } else if (op == "INFO") {
      // Cluster topology updates; the servers we dial are configured.
    } else if (op == "MSG" || op == "HMSG") {
      const bool with_headers = op == "HMSG";
      // MSG subject sid [reply] size; HMSG subject sid [reply] hsize size
      const std::size_t numbers = with_headers ? 2 : 1;
      std::uint64_t header_bytes = 0, total = 0, sid = 0;
      const bool shaped = f.size() == 3 + numbers || f.size() == 4 + numbers;
      if (!shaped || !parse_decimal(f[2], &sid) || !parse_decimal(f.back(), &total) ||
          (with_headers &&
           (!parse_decimal(f[f.size() - 2], &header_bytes) || header_bytes > total))) {
        why = {Errc::corrupt, "a malformed " + std::string(op) + " line"};
        break;
      }
      if (total > options_.max_incoming_bytes) {
        why = {Errc::corrupt, "a message of " + std::to_string(total) + " bytes, over the limit"};
        break;
      }
      if (why = fill(total + 2); !why.ok()) break;
      std::string_view body(session->buffer.data() + session->pos, total);
      if (session->buffer.compare(session->pos + total, 2, "\r\n") != 0) {
        why = {Errc::corrupt, "a message not ended by CRLF"};
        break;
      }
      NatsMessage m;
      m.subject = std::string(f[1]);
      if (f.size() == 4 + numbers) m.reply = std::string(f[3]);
      if (with_headers && !parse_header_block(body.substr(0, header_bytes), &m)) {
        why = {Errc::corrupt, "a malformed header block"};
        break;
      }
      m.data = std::string(body.substr(header_bytes));
      session->pos += total + 2;
      dispatch(std::move(m), sid);
    } else {
      why = {Errc::corrupt, "an unknown operation \"" + std::string(op) + "\""};
      break;
    }
  }
  end_session(session, why);
}

void NatsConnection::dispatch(NatsMessage&& message, std::uint64_t sid) {
  std::function<void(NatsMessage &&)> handler;
  {
    std::lock_guard lock(mutex_);
    if (sid == 1) {
      std::uint64_t token = 0;
      if (!message.subject.starts_with(inbox_prefix_) ||
          !parse_decimal(std::string_view(message.subject).substr(inbox_prefix_.size()), &token)) {
        return;
      }
      auto it = pending_.find(token);
      if (it == pending_.end()) return;  // a reply that came after its timeout
      if (message.status == 503) {
        it->second->status = {Errc::unavailable, "no one answers requests on that subject"};
      }
      it->second->reply = std::move(message);
      it->second->done = true;
      replies_.notify_all();
      return;
    }
    auto it = subscriptions_.find(sid);
    if (it == subscriptions_.end()) return;
    handler = it->second.handler;
    dispatching_ = sid;
  }
  handler(std::move(message));
  std::lock_guard lock(mutex_);
  dispatching_ = 0;
  replies_.notify_all();
}

void NatsConnection::end_session(const std::shared_ptr<Session>& session, const Status& why) {
  std::lock_guard lock(mutex_);
  if (!closing_) spdlog::warn("NATS {}: connection lost: {}", session->server, why.message);
  if (session_ == session) session_.reset();
  // This thread cannot join itself: whoever connects next (or the
  // destructor) does.
  if (!closing_) retired_.push_back(session);
  for (auto& [token, pending] : pending_) {
    if (!pending->done) {
      pending->done = true;
      pending->status = {Errc::unavailable, "NATS connection lost: " + why.message};
    }
  }
  replies_.notify_all();
}

Status NatsConnection::publish(std::string_view subject, std::string_view data,
                               const Headers& headers) {
  return send_message(subject, "", data, headers);
}

Status NatsConnection::send_message(std::string_view subject, std::string_view reply,
                                    std::string_view data, const Headers& headers) {
  if (!valid_subject(subject)) return {Errc::conflict, "not a NATS subject"};
  std::string header_block;
  if (!headers.empty()) {
    header_block = "NATS/1.0\r\n";
    for (const auto& [k, v] : headers) {
      if (!valid_header_text(k) || !valid_header_text(v) || k.find(':') != std::string::npos) {
        return {Errc::conflict, "a NATS header may not hold a line break or (in its name) a colon"};
      }
      header_block += k + ": " + v + "\r\n";
    }
    header_block += "\r\n";
  }
  if (header_block.size() + data.size() > max_payload()) {
    return {Errc::conflict, "a message of " + std::to_string(header_block.size() + data.size()) +
                                " bytes is over the NATS server's max_payload of " +
                                std::to_string(max_payload())};
  }
  std::shared_ptr<Session> session;
  if (Status s = ensure_session(&session); !s.ok()) return s;
  std::string frame;
  frame.reserve(subject.size() + reply.size() + header_block.size() + data.size() + 64);
  frame.append(header_block.empty() ? "PUB " : "HPUB ").append(subject).append(" ");
  if (!reply.empty()) frame.append(reply).append(" ");
  if (header_block.empty()) {
    frame.append(std::to_string(data.size()));
  } else {
    frame.append(std::to_string(header_block.size())).append(" ");
    frame.append(std::to_string(header_block.size() + data.size()));
  }
  frame.append("\r\n").append(header_block).append(data).append("\r\n");
  Status s = send_all(*session, frame);
  if (!s.ok()) session->shut();  // the reader ends the session
  return s;
}

Status NatsConnection::request(std::string_view subject, std::string_view data,
                               const Headers& headers, std::chrono::milliseconds timeout,
                               NatsMessage* reply) {
  std::uint64_t token = 0;
  if (Status s = send_request(subject, data, headers, &token); !s.ok()) return s;
  return await_reply(token, timeout, reply);
}

Status NatsConnection::send_request(std::string_view subject, std::string_view data,
                                    const Headers& headers, std::uint64_t* token) {
  {
    std::lock_guard lock(mutex_);
    *token = next_token_++;
    pending_[*token] = std::make_shared<Pending>();
  }
  Status s = send_message(subject, inbox_prefix_ + std::to_string(*token), data, headers);
  if (!s.ok()) forget(*token);
  return s;
}

Status NatsConnection::await_reply(std::uint64_t token, std::chrono::milliseconds timeout,
                                   NatsMessage* reply, bool* timed_out) {
  std::unique_lock lock(mutex_);
  if (timed_out) *timed_out = false;
  auto it = pending_.find(token);
  if (it == pending_.end()) return {Errc::unavailable, "no such request"};
  std::shared_ptr<Pending> pending = it->second;
  Status s;
  if (!replies_.wait_for(lock, timeout, [&] { return pending->done; })) {
    s = {Errc::unavailable, "no reply from NATS within " + std::to_string(timeout.count()) + " ms"};
    if (timed_out) {
      *timed_out = true;
      return s;  // still waiting
    }
  }
  pending_.erase(token);
  if (!s.ok()) return s;
  if (!pending->status.ok()) return pending->status;
  *reply = std::move(pending->reply);
  return {};
}

void NatsConnection::forget(std::uint64_t token) {
  std::lock_guard lock(mutex_);
  pending_.erase(token);
}

Status NatsConnection::subscribe(std::string_view subject,
                                 std::function<void(NatsMessage&&)> handler, std::uint64_t* made) {
  if (!valid_subject(subject)) return {Errc::conflict, "not a NATS subject"};
  std::uint64_t sid;
  {
    std::lock_guard lock(mutex_);
    sid = next_sid_++;
    subscriptions_[sid] = Subscription{std::string(subject), std::move(handler)};
  }
  if (made) *made = sid;
  std::shared_ptr<Session> session;
  if (Status s = ensure_session(&session); !s.ok()) return s;  // kept: sent on reconnection
  return send_all(*session, "SUB " + std::string(subject) + " " + std::to_string(sid) + "\r\n");
}

void NatsConnection::unsubscribe(std::uint64_t sid) {
  std::shared_ptr<Session> session;
  {
    std::unique_lock lock(mutex_);
    if (subscriptions_.erase(sid) == 0) return;
    session = session_;
    // Once this returns the handler does not run: wait out a call in
    // progress, unless this is that call (a handler unsubscribing itself).
    if (std::this_thread::get_id() != reader_id_) {
      replies_.wait(lock, [&] { return dispatching_ != sid; });
    }
  }
  // The server stops sending; a message already on its way finds no handler.
  if (session) send_all(*session, "UNSUB " + std::to_string(sid) + "\r\n");
}

Status NatsConnection::flush(std::chrono::milliseconds timeout) {
  std::shared_ptr<Session> session;
  if (Status s = ensure_session(&session); !s.ok()) return s;
  std::unique_lock lock(mutex_);
  const std::uint64_t before = pongs_;
  lock.unlock();
  if (Status s = send_all(*session, "PING\r\n"); !s.ok()) return s;
  lock.lock();
  if (!replies_.wait_for(lock, timeout, [&] { return pongs_ > before || session_ != session; }) ||
      session_ != session) {
    return {Errc::unavailable, "NATS did not answer a ping"};
  }
  return {};
}

}  // namespace memos::cluster
