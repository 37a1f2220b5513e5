#include "cluster/etcd_client.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdlib>

#include "cluster/base64.h"
#include "cluster/byte_stream.h"
#include "cluster/tcp_dial.h"

namespace memos::cluster {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxReplyBytes = 16u << 20;

// gRPC status codes etcd's gateway reports in "code".
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcNotFound = 5;

std::int64_t as_int(const json& v) {
  // int64 fields are strings in proto3's JSON; accept numbers too.
  if (v.is_string()) return std::stoll(v.get<std::string>());
  return v.get<std::int64_t>();
}

// Decodes a chunked body. False if malformed.
bool dechunk(std::string_view in, std::string* out) {
  for (;;) {
    auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) return false;
    std::size_t size = 0;
    std::size_t i = 0;
    for (; i < eol && std::isxdigit(static_cast<unsigned char>(in[i])); ++i) {
      if (size > kMaxReplyBytes) return false;
      const int c = std::tolower(static_cast<unsigned char>(in[i]));
      size = size * 16 + static_cast<std::size_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    if (i == 0) return false;
    in.remove_prefix(eol + 2);
    if (size == 0) return true;
    if (in.size() < size + 2) return false;
    out->append(in.substr(0, size));
    in.remove_prefix(size + 2);
  }
}

// One HTTP/1.1 POST on a connection of its own (over TLS with `tls`).
// `*status` gets the HTTP status, `*body` the decoded body.
Status http_post(const std::string& endpoint, const std::shared_ptr<const TlsContext>& tls,
                 std::string_view path, const std::string& payload,
                 std::chrono::milliseconds timeout, int* status, std::string* body) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string why, host, port;
  const int fd = tcp_dial(endpoint, timeout, &why);
  if (fd < 0) return {Errc::unavailable, endpoint + ": " + why};
  ByteStream stream(fd);
  split_host_port(endpoint, &host, &port);
  if (tls) {
    if (Status h = stream.start_tls(tls, host, deadline); !h.ok()) {
      return {h.code, endpoint + ": " + h.message};
    }
  }
  const std::string request =
      "POST " + std::string(path) + " HTTP/1.1\r\nHost: " + host + ":" + port +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(payload.size()) +
      "\r\nConnection: close\r\n\r\n" + payload;
  if (Status w = stream.write_all(request); !w.ok()) return {w.code, endpoint + ": " + w.message};
  std::string reply;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {Errc::unavailable, endpoint + ": no reply in time"};
    char chunk[16384];
    std::size_t got = 0;
    bool timed_out = false;
    Status r = stream.read_some(chunk, sizeof(chunk), left, &got, &timed_out);
    // etcd closes after its reply (Connection: close), with or without
    // TLS's close_notify: the reply is whole when the HTTP head says so
    // (checked below), not because the close was clean.
    if (!r.ok()) {
      if (reply.empty()) return {Errc::unavailable, endpoint + ": " + r.message};
      break;
    }
    reply.append(chunk, got);
    if (reply.size() > kMaxReplyBytes) return {Errc::corrupt, endpoint + ": a reply over 16 MiB"};
  }
  auto head_end = reply.find("\r\n\r\n");
  if (!reply.starts_with("HTTP/1.") || head_end == std::string::npos || reply.size() < 12) {
    return {Errc::corrupt, endpoint + ": not an HTTP reply"};
  }
  *status = std::atoi(reply.c_str() + 9);
  std::string head = reply.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view raw = std::string_view(reply).substr(head_end + 4);
  body->clear();
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    if (!dechunk(raw, body)) return {Errc::corrupt, endpoint + ": a malformed chunked reply"};
  } else {
    // A reply cut short (the connection closed early) is not taken whole.
    const auto length = head.find("\r\ncontent-length:");
    if (length != std::string::npos &&
        std::strtoull(head.c_str() + length + 17, nullptr, 10) != raw.size()) {
      return {Errc::corrupt, endpoint + ": a reply shorter or longer than its Content-Length"};
    }
    *body = std::string(raw);
  }
  return {};
}

// The range end that makes a range request cover every key with `prefix`.
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Status read_kvs(const json& reply, std::vector<EtcdKeyValue>* out) {
  out->clear();
  if (!reply.contains("kvs")) return {};
  for (const json& kv : reply.at("kvs")) {
    EtcdKeyValue e;
    if (!base64_decode(kv.value("key", std::string()), &e.key) ||
        !base64_decode(kv.value("value", std::string()), &e.value)) {
      return {Errc::corrupt, "etcd: a key or value that is not base64"};
    }
    if (kv.contains("lease")) e.lease = as_int(kv["lease"]);
    if (kv.contains("create_revision")) e.create_revision = as_int(kv["create_revision"]);
    if (kv.contains("mod_revision")) e.mod_revision = as_int(kv["mod_revision"]);
    out->push_back(std::move(e));
  }
  return {};
}

// Runs `read` over the JSON of a reply; a malformed one is corrupt.
template <class Read>
Status parse(const std::string& reply, Read&& read) {
  try {
    json r = json::parse(reply);
    if (!r.is_object()) return {Errc::corrupt, "etcd answered something not an object"};
    return read(r);
  } catch (const std::exception& e) {  // json's, and std::stoll's
    return {Errc::corrupt, std::string("etcd's reply: ") + e.what()};
  }
}

}  // namespace

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout,
                       std::shared_ptr<const TlsContext> tls)
    : endpoints_(std::move(endpoints)), timeout_(timeout), tls_(std::move(tls)) {}

std::string EtcdClient::preferred_endpoint() const {
  return endpoints_.empty() ? std::string() : endpoints_[preferred_.load() % endpoints_.size()];
}

Status EtcdClient::call(std::string_view path, const std::string& body, std::string* reply) {
  std::string failures;
  const std::size_t first = preferred_.load();
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    const std::size_t at = (first + i) % endpoints_.size();
    const std::string& endpoint = endpoints_[at];
    int status = 0;
    Status s = http_post(endpoint, tls_, path, body, timeout_, &status, reply);
    if (s.code == Errc::unavailable) {
      failures += (failures.empty() ? "" : "; ") + s.message;
      continue;
    }
    if (!s.ok()) return s;
    if (status == 200) {
      preferred_.store(at);
      return {};
    }
    // The gateway's error: {"error": ..., "message": ..., "code": gRPC code}.
    s = parse(*reply, [&](const json& r) -> Status {
      const std::string text =
          "etcd: " + r.value("message", std::string("HTTP ") + std::to_string(status));
      switch (r.value("code", 0)) {
        case kGrpcInvalidArgument:
          return {Errc::conflict, text};
        case kGrpcNotFound:
          return {Errc::not_found, text};
        default:
          return {Errc::unavailable, text};
      }
    });
    if (s.code != Errc::unavailable) {
      preferred_.store(at);  // an answer, if a refusal
      return s;
    }
    // A member without a leader or quorum (cut off from the others, or
    // during an election): another may answer.
    failures += (failures.empty() ? "" : "; ") + endpoint + ": " + s.message;
  }
  return {Errc::unavailable, "no etcd endpoint answered (" + failures + ")"};
}

Status EtcdClient::grant_lease(std::int64_t ttl_s, std::int64_t* id) {
  std::string reply;
  if (Status s = call("/v3/lease/grant", json{{"TTL", ttl_s}}.dump(), &reply); !s.ok()) return s;
  return parse(reply, [&](const json& r) -> Status {
    *id = as_int(r.at("ID"));
    return {};
  });
}

Status EtcdClient::keep_alive(std::int64_t id, std::int64_t* ttl_s) {
  std::string reply;
  if (Status s = call("/v3/lease/keepalive", json{{"ID", std::to_string(id)}}.dump(), &reply);
      !s.ok()) {
    return s;
  }
  // One result per request sent on the stream; a lapsed lease's has no TTL.
  return parse(reply, [&](const json& r) -> Status {
    const json& result = r.at("result");
    *ttl_s = result.contains("TTL") ? as_int(result["TTL"]) : 0;
    if (*ttl_s <= 0) return {Errc::not_found, "etcd: the lease has lapsed"};
    return {};
  });
}

Status EtcdClient::revoke(std::int64_t id) {
  std::string reply;
  Status s = call("/v3/lease/revoke", json{{"ID", std::to_string(id)}}.dump(), &reply);
  return s.code == Errc::not_found ? Status{} : s;  // already gone
}

Status EtcdClient::create(std::string_view key, std::string_view value, std::int64_t lease,
                          bool* created, EtcdKeyValue* holder) {
  const std::string k = base64_encode(key);
  json put = {{"key", k}, {"value", base64_encode(value)}};
  if (lease) put["lease"] = std::to_string(lease);
  json txn = {
      {"compare", json::array({{{"target", "CREATE"}, {"key", k}, {"createRevision", "0"}}})},
      {"success", json::array({{{"requestPut", put}}})},
      {"failure", json::array({{{"requestRange", {{"key", k}}}}})}};
  std::string reply;
  if (Status s = call("/v3/kv/txn", txn.dump(), &reply); !s.ok()) return s;
  return parse(reply, [&](const json& r) -> Status {
    *created = r.value("succeeded", false);
    if (*created || !holder) return {};
    std::vector<EtcdKeyValue> kvs;
    for (const json& response : r.value("responses", json::array())) {
      if (response.contains("response_range")) {
        if (Status s = read_kvs(response["response_range"], &kvs); !s.ok()) return s;
      }
    }
    if (!kvs.empty()) *holder = std::move(kvs.front());
    return {};
  });
}

Status EtcdClient::replace(std::string_view key, std::string_view value, std::int64_t mod_revision,
                           bool* replaced) {
  const std::string k = base64_encode(key);
  // etcd compares an absent key's revisions as 0.
  json txn = {
      {"compare",
       json::array(
           {{{"target", "MOD"}, {"key", k}, {"modRevision", std::to_string(mod_revision)}}})},
      {"success", json::array({{{"requestPut", {{"key", k}, {"value", base64_encode(value)}}}}})}};
  std::string reply;
  if (Status s = call("/v3/kv/txn", txn.dump(), &reply); !s.ok()) return s;
  return parse(reply, [&](const json& r) -> Status {
    *replaced = r.value("succeeded", false);
    return {};
  });
}

Status EtcdClient::put(std::string_view key, std::string_view value, std::int64_t lease) {
  json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease) body["lease"] = std::to_string(lease);
  std::string reply;
  return call("/v3/kv/put", body.dump(), &reply);
}

Status EtcdClient::get(std::string_view key, std::optional<EtcdKeyValue>* out) {
  std::string reply;
  if (Status s = call("/v3/kv/range", json{{"key", base64_encode(key)}}.dump(), &reply); !s.ok()) {
    return s;
  }
  return parse(reply, [&](const json& r) -> Status {
    std::vector<EtcdKeyValue> kvs;
    if (Status s = read_kvs(r, &kvs); !s.ok()) return s;
    out->reset();
    if (!kvs.empty()) *out = std::move(kvs.front());
    return {};
  });
}

Status EtcdClient::list(std::string_view prefix, std::vector<EtcdKeyValue>* out) {
  json body = {{"key", base64_encode(prefix)},
               {"range_end", base64_encode(prefix_end(std::string(prefix)))}};
  std::string reply;
  if (Status s = call("/v3/kv/range", body.dump(), &reply); !s.ok()) return s;
  return parse(reply, [&](const json& r) { return read_kvs(r, out); });
}

Status EtcdClient::erase(std::string_view key) {
  std::string reply;
  return call("/v3/kv/deleterange", json{{"key", base64_encode(key)}}.dump(), &reply);
}

}  // namespace memos::cluster
