#include "cluster/membership.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "cluster/names.h"

namespace memos::cluster {

using nlohmann::json;

namespace {

// Status requests waiting for the thread beyond this are dropped (their
// askers time out): a flood of them must not grow memory.
constexpr std::size_t kMaxQuestions = 64;

// A node id as [cluster] allows it: it becomes a subject token, so a key in
// etcd naming anything else is not asked about.
bool node_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::int64_t ttl_seconds(std::chrono::milliseconds ttl) {
  return std::max<std::int64_t>(2, (ttl.count() + 999) / 1000);
}

}  // namespace

std::string encode_report(const NodeReport& r) {
  json j{{"node", r.node},
         {"owner", r.owner},
         {"position", r.position},
         {"appended", r.appended},
         {"applied", r.applied}};
  if (!r.note.empty()) j["note"] = r.note;
  if (!r.policies.empty()) j["policies"] = r.policies;
  return j.dump();
}

bool policy_digest(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

namespace {

// A count as a report carries it: nlohmann would turn -1 or 1e30 into some
// unsigned number; a peer's count is taken only as it was written.
std::uint64_t count_field(const json& j, const char* name) {
  const json& v = j.at(name);
  if (!v.is_number_unsigned()) throw json::type_error::create(302, "not a count", &v);
  return v.get<std::uint64_t>();
}

// A peer's note as it may reach a terminal: printable ASCII, bounded.
std::string shown(std::string_view text, std::size_t limit) {
  std::string out(text.substr(0, limit));
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

}  // namespace

bool decode_report(std::string_view text, NodeReport* out, std::string* why) {
  try {
    const json j = json::parse(text);
    NodeReport r;
    r.node = j.at("node").get<std::string>();
    r.owner = j.at("owner").get<bool>();
    r.position = count_field(j, "position");
    r.appended = count_field(j, "appended");
    r.applied = count_field(j, "applied");
    if (j.contains("note")) r.note = shown(j.at("note").get<std::string>(), kMaxNote);
    if (j.contains("policies")) {
      r.policies = j.at("policies").get<std::string>();
      if (!policy_digest(r.policies)) throw json::other_error::create(501, "not a digest", &j);
    }
    r.answered = true;
    *out = std::move(r);
    return true;
  } catch (const json::exception& e) {
    // Not e.what(): it quotes the peer's bytes, which reach a terminal.
    (void)e;
    *why = "its answer is not a node's report";
    return false;
  }
}

Membership::Membership(MembershipSettings settings, NatsConnection& nats, EtcdClient& etcd,
                       std::function<NodeReport()> report)
    : settings_(std::move(settings)), nats_(nats), etcd_(etcd), report_(std::move(report)) {}

Membership::~Membership() {
  stop();
}

std::string Membership::key() const {
  return roster_key(settings_.cluster, settings_.node);
}

std::string Membership::status_subject(std::string_view node) const {
  return node_status_subject(settings_.cluster, node);
}

Status Membership::announce() {
  std::int64_t lease = 0;
  if (Status s = etcd_.grant_lease(ttl_seconds(settings_.ttl), &lease); !s.ok()) return s;
  if (Status s = etcd_.put(key(), settings_.node, lease); !s.ok()) {
    etcd_.revoke(lease);
    return s;
  }
  std::lock_guard lock(mutex_);
  lease_ = lease;
  return {};
}

Status Membership::start() {
  // Not on the roster yet is no reason to stop the daemon: the thread puts
  // the key there once etcd answers.
  if (Status s = announce(); !s.ok())
    spdlog::warn("cluster: node {} not on the roster yet: {}", settings_.node, s.message);
  // The handler runs on NATS's reader thread: it only queues the question.
  Status s = nats_.subscribe(
      status_subject(settings_.node),
      [this](NatsMessage&& m) {
        if (m.reply.empty()) return;
        std::lock_guard lock(mutex_);
        if (questions_.size() >= kMaxQuestions) return;
        questions_.push_back(std::move(m.reply));
        wake_.notify_one();
      },
      &sid_);
  if (!s.ok() && s.code != Errc::unavailable) {  // unavailable: made on reconnection
    stop();
    return s;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  answerer_ = std::thread([this] { answer(); });
  renewer_ = std::thread([this] { renew(); });
  return {};
}

void Membership::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
    renew_.notify_all();
  }
  if (answerer_.joinable()) answerer_.join();
  if (renewer_.joinable()) renewer_.join();
  if (sid_ != 0) {
    nats_.unsubscribe(sid_);
    sid_ = 0;
  }
  std::int64_t lease = 0;
  {
    std::lock_guard lock(mutex_);
    std::swap(lease, lease_);
  }
  if (lease != 0) {
    if (Status s = etcd_.revoke(lease); !s.ok())
      spdlog::warn("cluster: leaving the roster: {} (the entry lapses on its own)", s.message);
  }
}

void Membership::answer() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait(lock, [&] { return stopping_ || !questions_.empty(); });
    if (stopping_) break;
    std::deque<std::string> questions;
    questions.swap(questions_);
    lock.unlock();
    const std::string answer = encode_report(report_());
    for (const std::string& reply : questions) nats_.publish(reply, answer);
    lock.lock();
  }
}

void Membership::renew() {
  using Clock = std::chrono::steady_clock;
  // Renewed three times a lease, as the shard's lease is.
  const auto renew_every = std::chrono::milliseconds(ttl_seconds(settings_.ttl) * 1000 / 3);
  std::string last_warning;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    renew_.wait_until(lock, Clock::now() + renew_every, [&] { return stopping_; });
    if (stopping_) break;
    const std::int64_t lease = lease_;
    lock.unlock();
    std::int64_t ttl = 0;
    Status s = lease ? etcd_.keep_alive(lease, &ttl) : Status{Errc::not_found, "no lease"};
    // A lapsed lease (etcd unreachable for longer than it) took the key
    // with it: the node puts it back once etcd answers.
    if (s.code == Errc::not_found) s = announce();
    if (!s.ok() && s.message != last_warning) {
      spdlog::warn("cluster: keeping node {} on the roster: {}", settings_.node, s.message);
    }
    last_warning = s.ok() ? std::string() : s.message;
    lock.lock();
  }
}

Status Membership::gather(std::chrono::milliseconds timeout, std::vector<NodeReport>* out) {
  std::vector<EtcdKeyValue> keys;
  const std::string prefix = roster_prefix(settings_.cluster);
  if (Status s = etcd_.list(prefix, &keys); !s.ok()) return s;
  if (keys.size() > settings_.max_nodes) keys.resize(settings_.max_nodes);
  // Every node at once: one that does not answer costs the timeout once.
  std::vector<std::future<NodeReport>> asked;
  for (const EtcdKeyValue& kv : keys) {
    const std::string node = kv.key.substr(prefix.size());
    if (!node_name(node)) {
      std::promise<NodeReport> odd;
      // Shown as printable text only: the key is whatever someone put there.
      odd.set_value(
          NodeReport{shown(node, 64), false, "a key under the roster that names no node"});
      asked.push_back(odd.get_future());
      continue;
    }
    if (node == settings_.node) {
      std::promise<NodeReport> mine;
      NodeReport r = report_();
      r.node = node;
      r.answered = true;
      mine.set_value(std::move(r));
      asked.push_back(mine.get_future());
      continue;
    }
    asked.push_back(std::async(std::launch::async, [this, node, timeout] {
      NodeReport r;
      r.node = node;
      NatsMessage reply;
      Status s = nats_.request(status_subject(node), "", {}, timeout, &reply);
      std::string why;
      if (!s.ok()) {
        r.note = s.message;
      } else if (!decode_report(reply.data, &r, &why)) {
        r = NodeReport{};
        r.node = node;
        r.note = why;
      } else if (r.node != node) {
        // Only the node itself answers on its subject: another name is a
        // misconfigured cluster (two nodes with one id), said as such.
        r = NodeReport{node, false, "answered as node " + shown(r.node, 64)};
      }
      return r;
    }));
  }
  out->clear();
  for (auto& f : asked) out->push_back(f.get());
  return {};
}

}  // namespace memos::cluster
