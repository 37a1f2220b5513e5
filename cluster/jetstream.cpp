#include "cluster/jetstream.h"

#include "cluster/base64.h"
#include "cluster/decimal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

namespace memos::cluster {
namespace {

using nlohmann::json;

// JetStream's error codes (nats-server's server/errors.json) that mean
// something here; every other error is unavailable (retryable) or corrupt.
constexpr int kStreamNameInUse = 10058;
constexpr int kStreamNotFound = 10059;
constexpr int kNoMessageFound = 10037;
constexpr int kWrongLastSequence = 10071;

// "wrong last sequence: 41" -> 41.
std::optional<std::uint64_t> trailing_number(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  text.remove_prefix(colon + 1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  std::uint64_t v = 0;
  if (!parse_decimal(text, &v)) return std::nullopt;
  return v;
}

// The Status for a reply's "error" object.
Status api_error(const json& error) {
  const int code = error.value("err_code", 0);
  const std::string text = "JetStream: " + error.value("description", std::string("an error"));
  switch (code) {
    case kStreamNameInUse:
    case kWrongLastSequence:
      return {Errc::conflict, text};
    case kStreamNotFound:
    case kNoMessageFound:
      return {Errc::not_found, text};
    default:
      return {Errc::unavailable, text};
  }
}

std::int64_t ns(std::int64_t ms) {
  return ms * 1'000'000;
}

}  // namespace

Status JetStream::call(const std::string& subject, const std::string& body, std::string* reply,
                       int* err_code) {
  NatsMessage m;
  if (Status s = nats_.request(subject, body, {}, timeout_, &m); !s.ok()) return s;
  *reply = std::move(m.data);
  try {
    json r = json::parse(*reply);
    if (!r.is_object()) return {Errc::corrupt, "JetStream answered something not an object"};
    if (r.contains("error")) {
      if (err_code) *err_code = r["error"].value("err_code", 0);
      return api_error(r["error"]);
    }
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's reply is not JSON: ") + e.what()};
  }
  return {};
}

Status JetStream::ensure_stream(const StreamSettings& settings) {
  json config = {{"name", settings.name},
                 {"subjects", settings.subjects},
                 {"retention", "limits"},
                 {"storage", settings.file_storage ? "file" : "memory"},
                 {"num_replicas", settings.replicas},
                 {"max_msg_size", settings.max_message_bytes},
                 {"max_age", ns(settings.max_age_ms)},
                 // No direct gets for the log: replicas answer them with
                 // records the log may not keep (docs/scale-out.md, "Reading
                 // the log").
                 {"allow_direct", settings.allow_direct},
                 {"discard", "old"}};
  std::string reply;
  Status s = call("$JS.API.STREAM.CREATE." + settings.name, config.dump(), &reply);
  if (s.code != Errc::conflict) return s;
  // There already: the same stream if it has our subjects and replicas.
  if (s = call("$JS.API.STREAM.INFO." + settings.name, "", &reply); !s.ok()) return s;
  try {
    json have = json::parse(reply).at("config");
    auto subjects = have.at("subjects").get<std::vector<std::string>>();
    auto want = settings.subjects;
    std::sort(subjects.begin(), subjects.end());
    std::sort(want.begin(), want.end());
    if (subjects != want || have.at("num_replicas").get<int>() != settings.replicas) {
      return {Errc::conflict,
              "JetStream stream " + settings.name + " exists with other subjects or replicas"};
    }
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's stream info: ") + e.what()};
  }
  return {};
}

Status JetStream::append(std::string_view subject, std::string_view data,
                         std::optional<std::uint64_t> expected_last, std::string_view message_id,
                         std::uint64_t* sequence, std::uint64_t* actual_last,
                         const Headers& extra) {
  PendingAppend pending;
  if (Status s = begin_append(subject, data, expected_last, message_id, &pending, extra); !s.ok()) {
    return s;
  }
  return end_append(pending, sequence, actual_last);
}

Status JetStream::begin_append(std::string_view subject, std::string_view data,
                               std::optional<std::uint64_t> expected_last,
                               std::string_view message_id, PendingAppend* out,
                               const Headers& extra) {
  Headers headers = extra;
  if (expected_last) {
    headers.emplace_back("Nats-Expected-Last-Subject-Sequence", std::to_string(*expected_last));
  }
  if (!message_id.empty()) headers.emplace_back("Nats-Msg-Id", std::string(message_id));
  return nats_.send_request(subject, data, headers, &out->token);
}

Status JetStream::end_append(const PendingAppend& pending, std::uint64_t* sequence,
                             std::uint64_t* actual_last) {
  NatsMessage m;
  if (Status s = nats_.await_reply(pending.token, timeout_, &m); !s.ok()) return s;
  return read_ack(m, sequence, actual_last);
}

void JetStream::forget(const PendingAppend& pending) {
  nats_.forget(pending.token);
}

Status JetStream::read_ack(const NatsMessage& m, std::uint64_t* sequence,
                           std::uint64_t* actual_last) {
  try {
    json ack = json::parse(m.data);
    if (ack.contains("error")) {
      Status s = api_error(ack["error"]);
      if (s.code == Errc::conflict && actual_last) {
        if (auto n = trailing_number(ack["error"].value("description", std::string()))) {
          *actual_last = *n;
        }
      }
      return s;
    }
    *sequence = ack.at("seq").get<std::uint64_t>();
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's append acknowledgement: ") + e.what()};
  }
  return {};
}

namespace {

// JetStream's time of a message, "2026-12-07T09:11:44.123456789Z", in ms
// since the epoch; 0 if it is not such a time.
std::uint64_t rfc3339_ms(const std::string& text) {
  std::tm utc{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
  if (!rest) return 0;
  std::uint64_t ms = 0;
  if (*rest == '.') {
    int digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest) {
      if (digits++ < 3) ms = ms * 10 + static_cast<std::uint64_t>(*rest - '0');
    }
    for (; digits < 3; ++digits) ms *= 10;
  }
  if (*rest != 'Z') return 0;
  const std::time_t seconds = timegm(&utc);
  return seconds < 0 ? 0 : static_cast<std::uint64_t>(seconds) * 1000 + ms;
}

// A STREAM.MSG.GET reply's message into `out`. Errors: corrupt.
Status parse_stored_message(const std::string& reply, StoredMessage* out) {
  try {
    const json message = json::parse(reply).at("message");
    out->subject = message.at("subject").get<std::string>();
    out->sequence = message.at("seq").get<std::uint64_t>();
    const json& time = message.value("time", json());
    out->time_ms = time.is_string() ? rfc3339_ms(time.get<std::string>()) : 0;
    std::string data = message.value("data", std::string());
    if (!base64_decode(data, &out->data)) throw json::other_error::create(501, "data", nullptr);
    out->headers.clear();
    if (std::string hdrs = message.value("hdrs", std::string()); !hdrs.empty()) {
      std::string block;
      NatsMessage parsed;
      if (!base64_decode(hdrs, &block) || !parse_header_block(block, &parsed)) {
        throw json::other_error::create(501, "hdrs", nullptr);
      }
      out->headers = std::move(parsed.headers);
    }
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's message: ") + e.what()};
  }
  if (out->subject.empty()) return {Errc::corrupt, "JetStream's message lacks its subject"};
  return {};
}

}  // namespace

Status JetStream::next_message(std::string_view stream, std::uint64_t sequence,
                               std::string_view filter, StoredMessage* out) {
  json body = {{"seq", sequence}, {"next_by_subj", std::string(filter)}};
  std::string reply;
  int err_code = 0;
  Status s = call("$JS.API.STREAM.MSG.GET." + std::string(stream), body.dump(), &reply, &err_code);
  if (err_code == kNoMessageFound) return {Errc::not_found, "no message yet"};
  if (!s.ok()) return s;
  if (s = parse_stored_message(reply, out); !s.ok()) return s;
  if (out->sequence < sequence) {
    return {Errc::corrupt, "JetStream's message comes before the one asked"};
  }
  return {};
}

Status JetStream::direct_next(std::string_view stream, std::uint64_t sequence,
                              std::string_view filter, StoredMessage* out) {
  json body = {{"seq", sequence}, {"next_by_subj", std::string(filter)}};
  NatsMessage m;
  if (Status s =
          nats_.request("$JS.API.DIRECT.GET." + std::string(stream), body.dump(), {}, timeout_, &m);
      !s.ok()) {
    return s;
  }
  if (m.status == 404) return {Errc::not_found, "no message yet"};
  if (m.status != 0) {
    return {Errc::unavailable,
            "JetStream's direct get: " + std::to_string(m.status) + " " + m.status_text};
  }
  out->subject = m.header("Nats-Subject");
  std::uint64_t seq = 0;
  if (out->subject.empty() || !parse_decimal(m.header("Nats-Sequence"), &seq) || seq < sequence) {
    return {Errc::corrupt, "JetStream's direct get lacks its subject or sequence"};
  }
  out->sequence = seq;
  out->data = std::move(m.data);
  out->headers = std::move(m.headers);
  return {};
}

Status JetStream::last_message(std::string_view stream, std::string_view subject,
                               StoredMessage* out) {
  json body = {{"last_by_subj", std::string(subject)}};
  std::string reply;
  int err_code = 0;
  Status s = call("$JS.API.STREAM.MSG.GET." + std::string(stream), body.dump(), &reply, &err_code);
  if (err_code == kNoMessageFound)
    return {Errc::not_found, "no message on " + std::string(subject)};
  if (!s.ok()) return s;
  if (s = parse_stored_message(reply, out); !s.ok()) return s;
  if (out->subject != subject)
    return {Errc::corrupt, "JetStream's last message is another subject's"};
  return {};
}

Status JetStream::last_sequence(std::string_view stream, std::string_view subject,
                                std::uint64_t* out) {
  json body = {{"last_by_subj", std::string(subject)}};
  std::string reply;
  int err_code = 0;
  Status s = call("$JS.API.STREAM.MSG.GET." + std::string(stream), body.dump(), &reply, &err_code);
  if (err_code == kNoMessageFound) {
    *out = 0;  // the subject has no message yet
    return {};
  }
  if (!s.ok()) return s;
  try {
    *out = json::parse(reply).at("message").at("seq").get<std::uint64_t>();
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's last message: ") + e.what()};
  }
  return {};
}

Status JetStream::stream_usage(std::string_view stream, std::string_view subjects_filter,
                               StreamUsage* out) {
  json body = json::object();
  if (!subjects_filter.empty()) {
    // An offset past the end: the server pages its list of subjects and
    // counts them in "total" (servers from 2.9.x); an older one sends the
    // whole list, counted here.
    body = {{"subjects_filter", std::string(subjects_filter)}, {"offset", 1 << 30}};
  }
  std::string reply;
  if (Status s = call("$JS.API.STREAM.INFO." + std::string(stream), body.dump(), &reply); !s.ok())
    return s;
  try {
    json r = json::parse(reply);
    const json& state = r.at("state");
    StreamUsage u;
    u.messages = state.at("messages").get<std::uint64_t>();
    u.bytes = state.at("bytes").get<std::uint64_t>();
    u.last_sequence = state.at("last_seq").get<std::uint64_t>();
    if (!subjects_filter.empty()) {
      u.subjects = r.contains("total")          ? r.at("total").get<std::uint64_t>()
                   : state.contains("subjects") ? state.at("subjects").size()
                                                : 0;
    }
    *out = u;
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's stream info: ") + e.what()};
  }
  return {};
}

Status JetStream::stream_cluster(std::string_view stream, StreamCluster* out) {
  std::string reply;
  if (Status s = call("$JS.API.STREAM.INFO." + std::string(stream), "", &reply); !s.ok()) return s;
  // A server's own report, read with care all the same: a field of the
  // wrong type is an error, not an exception.
  const json r = json::parse(reply, nullptr, false);
  StreamCluster c;
  if (!r.is_object()) return {Errc::corrupt, "JetStream's stream info is not an object"};
  if (!r.contains("cluster")) {
    *out = c;  // a server without a cluster: no leader, no replicas
    return {};
  }
  const json& cluster = r["cluster"];
  if (!cluster.is_object()) return {Errc::corrupt, "JetStream's stream info: a bad cluster"};
  c.clustered = true;
  if (cluster.contains("leader")) {
    if (!cluster["leader"].is_string())
      return {Errc::corrupt, "JetStream's stream info: a bad leader"};
    c.leader = cluster["leader"].get<std::string>();
  }
  if (cluster.contains("replicas")) {
    if (!cluster["replicas"].is_array())
      return {Errc::corrupt, "JetStream's stream info: bad replicas"};
    for (const json& p : cluster["replicas"]) {
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string())
        return {Errc::corrupt, "JetStream's stream info: a replica without a name"};
      StreamReplica replica;
      replica.server = p["name"].get<std::string>();
      auto flag = [&p](const char* name) {
        return p.contains(name) && p[name].is_boolean() && p[name].get<bool>();
      };
      replica.current = flag("current");
      replica.offline = flag("offline");
      // "active" is nanoseconds since the leader heard from it.
      if (p.contains("active") && p["active"].is_number_unsigned())
        replica.active_ms = p["active"].get<std::uint64_t>() / 1'000'000;
      if (p.contains("lag") && p["lag"].is_number_unsigned())
        replica.lag = p["lag"].get<std::uint64_t>();
      c.replicas.push_back(std::move(replica));
    }
  }
  *out = std::move(c);
  return {};
}

Status JetStream::step_down(std::string_view stream) {
  std::string reply;
  return call("$JS.API.STREAM.LEADER.STEPDOWN." + std::string(stream), "", &reply);
}

Status JetStream::stream_end(std::string_view stream, std::uint64_t* out) {
  StreamUsage usage;
  Status s = stream_usage(stream, "", &usage);
  if (s.ok()) *out = usage.last_sequence;
  return s;
}

Status JetStream::purge(std::string_view stream, std::string_view subject, std::uint64_t* purged) {
  return purge_request(stream, json{{"filter", std::string(subject)}}.dump(), purged);
}

Status JetStream::purge_below(std::string_view stream, std::string_view subject,
                              std::uint64_t below, std::uint64_t* purged) {
  if (purged) *purged = 0;
  // JetStream reads a sequence of 0 as "no bound": everything would go.
  if (below <= 1) return {};
  return purge_request(stream, json{{"filter", std::string(subject)}, {"seq", below}}.dump(),
                       purged);
}

Status JetStream::purge_request(std::string_view stream, const std::string& body,
                                std::uint64_t* purged) {
  std::string reply;
  if (Status s = call("$JS.API.STREAM.PURGE." + std::string(stream), body, &reply); !s.ok()) {
    return s;
  }
  try {
    const json r = json::parse(reply);
    if (!r.value("success", false)) return {Errc::corrupt, "JetStream did not purge: " + reply};
    if (purged) *purged = r.value("purged", std::uint64_t{0});
  } catch (const json::exception& e) {
    return {Errc::corrupt, std::string("JetStream's purge: ") + e.what()};
  }
  return {};
}

}  // namespace memos::cluster
