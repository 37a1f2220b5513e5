#include "cluster/shard_replica.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cluster/names.h"
#include "cluster/stream_reader.h"
#include "memcube/blob_store.h"
#include "memcube/record_codec.h"

namespace memos::cluster {
namespace {

using Clock = std::chrono::steady_clock;

// The part of a lease an owner does not use: it stops acting as owner this
// long before etcd could hand the shard to another node, which covers the
// two clocks running at slightly different rates and the keep-alive's
// flight.
std::chrono::milliseconds margin(std::chrono::milliseconds lease) {
  return std::max(std::chrono::milliseconds(100), lease / 6);
}

std::string digest_of(std::string_view record) {
  const store::BlobId id = store::sha256(record);
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

// Where a store stands once it holds a record: a `previous` that is not a
// digest (a record from before the chain) is not known.
store::LogPosition position_of(std::uint64_t sequence, std::string digest,
                               const std::string& previous) {
  return {sequence, std::move(digest), previous.size() == 32 ? previous : std::string()};
}

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// The first 8 bytes of a digest in hex: enough to tell records apart in a
// log line (scripts/cluster-test compares them across nodes).
std::string short_hex(std::string_view digest) {
  return digest.empty() ? "unknown" : hex(digest.substr(0, 8));
}

// A record's message id (Nats-Msg-Id): its digest in hex, and for a record
// sent in parts the part's number. The same record sent again is the same
// message to JetStream's duplicate check.
std::string message_id_of(std::string_view digest, std::size_t part) {
  std::string out = hex(digest);
  if (part != 0) out += "." + std::to_string(part);
  return out;
}

}  // namespace

ShardReplica::ShardReplica(ReplicaSettings settings, store::Store& store,
                           store::CommitQueue& commits, NatsConnection& nats, EtcdClient& etcd)
    : settings_(std::move(settings)),
      store_(store),
      commits_(commits),
      nats_(nats),
      js_(nats, std::max(std::chrono::milliseconds(1000), settings_.lease / 2)),
      etcd_(etcd),
      trouble_("shard " + std::to_string(settings_.shard), "replication goes on") {}

ShardReplica::~ShardReplica() {
  stop(true);
}

std::string ShardReplica::subject() const {
  return shard_subject(settings_.cluster, settings_.shard);
}

std::string ShardReplica::stream() const {
  return log_stream(settings_.cluster);
}

std::string ShardReplica::owner_key() const {
  return shard_owner_key(settings_.cluster, settings_.shard);
}

Status ShardReplica::start() {
  StreamSettings stream_settings;
  stream_settings.name = stream();
  stream_settings.subjects = {all_shards_filter(settings_.cluster)};
  stream_settings.replicas = settings_.replicas;
  if (Status s = js_.ensure_stream(stream_settings); !s.ok()) return s;
  store::LogPosition position;
  {
    std::optional<store::ReadTxn> r;
    if (Status s = store_.begin_read(&r); !s.ok()) return s;
    if (Status s = r->log_position(settings_.shard, &position); !s.ok()) return s;
  }
  // Who owns the shard, so that a node that has just started names the
  // owner at once; the thread keeps it current (an error leaves it to it).
  std::optional<EtcdKeyValue> holder;
  if (etcd_.get(owner_key(), &holder).ok() && holder && holder->value != settings_.node) {
    std::lock_guard lock(mutex_);
    owner_node_ = holder->value;
  }
  {
    std::lock_guard lock(mutex_);
    position_ = tail_ = position.sequence;
    digest_ = std::move(position.digest);
    previous_ = std::move(position.previous);
  }
  // The owner's appends wake the follower; polling covers missed wake-ups.
  // A replica the stream reader feeds is woken by it (take()).
  if (stream_ == nullptr) {
    if (Status s = nats_.subscribe(
            subject(), [this](NatsMessage&&) { read_soon(); }, &wake_sid_);
        !s.ok()) {
      return s;
    }
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void ShardReplica::read_through(StreamReader* reader) {
  std::lock_guard lock(mutex_);
  stream_ = reader;
  // Not fed until its own read finds its subject's end: a shard that has
  // gone unwritten since long before this store stopped would otherwise
  // hold the reader back to its last record, and every restart read the
  // stream from there.
  fed_ = false;
}

void ShardReplica::take(const StoredMessage& m) {
  std::lock_guard apply(apply_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (!fed_) {
      // Reading its own subject: tell it there is more.
      woken_ = true;
      changed_.notify_all();
      return;
    }
    if (m.sequence <= tail_) return;  // read already, or its own append
    if (owner_ || !fault_.empty() || stopping_) {
      // An owner writes its subject; a record in it past tail_ is its own
      // append still in flight, or another node's, which fences its next
      // append (it follows then, on its own thread).
      fed_ = false;
      return;
    }
  }
  std::string record;
  Status s = parts_.take(m, &record);
  if (s.ok() && !record.empty()) s = apply_record(record, m.sequence);
  std::lock_guard lock(mutex_);
  if (!s.ok()) {
    // Its own thread reads its subject from tail_ and says what is wrong.
    fed_ = false;
    woken_ = true;
  } else {
    tail_ = m.sequence;
  }
  changed_.notify_all();
}

std::uint64_t ShardReplica::held_through(std::uint64_t sequence) {
  std::lock_guard lock(mutex_);
  // Within its lease no other node appends to its subject, and its own
  // records are its store's once their groups commit. Unfed before the
  // tail's check: an owner holding the furthest tail stayed fed, and its
  // reader read on for it (its appends, which no longer wake the reader,
  // had unfed it as a side effect).
  if (owns_locked()) {
    fed_ = false;
    return sequence;
  }
  if (tail_ >= sequence) return sequence;
  // Unfed, it takes nothing from the reader: it is fed again only once its
  // own read finds nothing more of its subject, and holds all of it then.
  return fed_ ? tail_ : sequence;
}

bool ShardReplica::fed() const {
  std::lock_guard lock(mutex_);
  return fed_;
}

std::uint64_t ShardReplica::tail() const {
  std::lock_guard lock(mutex_);
  return tail_;
}

void ShardReplica::stop(bool give_back) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    changed_.notify_all();
  }
  if (wake_sid_) nats_.unsubscribe(wake_sid_);
  if (thread_.joinable()) thread_.join();
  std::int64_t lease = 0;
  {
    std::lock_guard lock(mutex_);
    if (owner_) lease = lease_;
    owner_ = false;
    lease_ = 0;
    // A group begun before the stop may still end (end_group()); it tells
    // no reader, which may be gone by then.
    stream_ = nullptr;
    fed_ = false;
  }
  tell_role();
  if (lease && give_back) {
    if (Status s = etcd_.revoke(lease); !s.ok()) {
      spdlog::warn("shard {}: the lease was not given back ({}); it lapses in {} ms",
                   settings_.shard, s.message, settings_.lease.count());
    }
  }
}

bool ShardReplica::owns_locked() const {
  return owner_ && !behind_ && !barrier_ && fault_.empty() && Clock::now() < lease_valid_until_;
}

bool ShardReplica::owner() const {
  std::lock_guard lock(mutex_);
  return owns_locked();
}

ReplicaState ShardReplica::state() const {
  ReplicaState st;
  std::lock_guard lock(mutex_);
  st.owner = owns_locked();
  st.owner_node = owner_node_;
  st.position = position_;
  st.appended = appended_;
  st.applied = applied_;
  st.passed_over = passed_over_;
  st.epoch = st.owner ? lease_ : 0;
  st.digest = digest_;
  st.fault = fault_;
  st.fed = fed_;
  return st;
}

bool ShardReplica::wait_position(std::uint64_t sequence, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return position_ >= sequence; });
}

std::optional<ShardReplica::Clock::time_point> ShardReplica::current_as_of() const {
  std::lock_guard lock(mutex_);
  // No other node can have appended since this one claimed the shard, and
  // its own writes commit before they are answered.
  if (owns_locked()) return Clock::now();
  if (fed_) {
    // The reader's mutex is taken under this one, never the other way.
    const std::optional<Clock::time_point> read = stream_->current_as_of();
    if (read && (!current_as_of_ || *read > *current_as_of_)) return read;
  }
  return current_as_of_;
}

Status ShardReplica::log_end(std::uint64_t* sequence) {
  return js_.stream_end(stream(), sequence);
}

void ShardReplica::read_soon() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  changed_.notify_all();
}

Status ShardReplica::wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                                  std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  // A read of the subject asked after the round asked where the log ends,
  // that found nothing more, proves the shard held every record the reads
  // waiting may need: each write they must see was acknowledged, so in the
  // leader's log, before then (follow() sets current_as_of_). An owner
  // within its lease holds its whole subject (the log's end may be another
  // shard's record).
  // While fed (checked under mutex_, which take() needs to unfeed it), every
  // record the reader handed on was applied here.
  auto holds = [&] {
    return tail_ >= sequence || owns_locked() || (current_as_of_ && *current_as_of_ >= asked_at) ||
           (fed_ && stream_->holds_through(sequence, asked_at));
  };
  if (!holds()) {
    woken_ = true;  // read now, not at the next poll
    changed_.notify_all();
  }
  changed_.wait_for(lock, timeout, [&] { return holds() || !fault_.empty() || stopping_; });
  if (!fault_.empty()) return {Errc::corrupt, fault_};
  if (!holds()) {
    if (stopping_) return {Errc::unavailable, "memosd is stopping"};
    return {Errc::unavailable, "the log ends at record " + std::to_string(sequence) +
                                   " and this node holds it to " + std::to_string(tail_) +
                                   " after " + std::to_string(timeout.count()) + " ms"};
  }
  if (!current_as_of_ || *current_as_of_ < asked_at) current_as_of_ = asked_at;
  return {};
}

void ShardReplica::run() {
  auto next_lease_check = Clock::now();
  // A wake-up comes when the owner appends, but the replica a read reaches
  // may not hold that record yet (the log's own replication lag): a wake-up
  // that found nothing is followed by reads a few ms apart, doubling, before
  // the thread falls back to polling.
  bool woken = false;
  std::chrono::milliseconds retry{0};
  for (;;) {
    bool owner, behind, fed;
    std::uint64_t tail_before;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      owner = owner_;
      behind = behind_;
      fed = fed_;
      tail_before = tail_;
    }
    // What the turn did, said once at its end (its first failure): a lease
    // kept after a failed read does not mean replication goes on.
    std::optional<Status> turn;
    auto note = [&](Status s) {
      if (!turn || (turn->ok() && !s.ok())) turn = std::move(s);
    };
    if (behind) {
      bool in_doubt;
      {
        std::lock_guard lock(mutex_);
        in_doubt = in_doubt_.has_value();
      }
      if (in_doubt) note(resolve_doubt());
    }
    if ((!owner && !fed) || behind) {
      Status s = follow();
      note(s);
      std::lock_guard lock(mutex_);
      // What the failed append missed is applied now (once the log answered
      // for an append in doubt).
      if (behind && s.ok() && !in_doubt_) behind_ = false;
      const bool nothing_new = s.ok() && tail_ == tail_before;
      if (nothing_new && (woken || retry.count() != 0)) {
        retry = retry.count() == 0 ? std::chrono::milliseconds(2) : retry * 2;
        if (retry >= settings_.poll) retry = std::chrono::milliseconds(0);
      } else {
        retry = std::chrono::milliseconds(0);
      }
    }
    if (Clock::now() >= next_lease_check) {
      next_lease_check = Clock::now() + settings_.lease / 3;
      bool handing_over;
      {
        std::lock_guard lock(mutex_);
        handing_over = handing_over_;
      }
      if (owner && handing_over) {
        give_back();
      } else {
        note(owner ? keep_lease() : claim());
      }
      tell_role();
    }
    // A new owner writes only once its barrier is in the log.
    bool barrier;
    {
      std::lock_guard lock(mutex_);
      barrier = owner_ && barrier_ && !behind_ && fault_.empty();
    }
    if (barrier) {
      note(append_barrier());
      tell_role();
    }
    if (turn) report(*turn);
    std::unique_lock lock(mutex_);
    auto wait = owner_ ? settings_.lease / 3 : retry.count() != 0 ? retry : settings_.poll;
    // A failed append that has not been handled yet wakes the thread; one
    // it has just tried to handle (and failed) waits for the next turn.
    changed_.wait_for(lock, wait, [&] { return stopping_ || woken_ || (behind_ && !behind); });
    woken = woken_;
    woken_ = false;
  }
}

void ShardReplica::tell_role() {
  bool owner;
  {
    std::lock_guard lock(mutex_);
    // Owner once it may write: what the role observer reloads must come
    // from a store that holds the whole log, which the barrier proves.
    owner = owner_ && !barrier_;
  }
  if (owner == told_owner_) return;
  told_owner_ = owner;
  if (role_observer_) role_observer_(owner);
}

void ShardReplica::report(const Status& turn) {
  // A replica stopped off the chain stays stopped, whatever else a turn
  // did: that is what it says, as an error.
  std::string fault;
  {
    std::lock_guard lock(mutex_);
    fault = fault_;
  }
  if (fault.empty()) return trouble_.turn(turn);
  trouble_.turn(Status{Errc::corrupt, fault}, true);
}

Status ShardReplica::follow() {
  for (;;) {
    // One message at a time under apply_mutex_: the stream reader's take()
    // waits meanwhile, and a read that finds the subject's end feeds the
    // replica before any record the reader holds back is handed on.
    std::lock_guard apply(apply_mutex_);
    std::uint64_t after;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return {};
      if (!fault_.empty()) return {Errc::corrupt, fault_};
      after = tail_;
    }
    StoredMessage m;
    const auto asked_at = Clock::now();
    Status s = js_.next_message(stream(), after + 1, subject(), &m);
    if (s.code == Errc::not_found) {
      // The leader had nothing past what this store holds: it was current
      // then.
      std::lock_guard lock(mutex_);
      if (tail_ == after && (!current_as_of_ || *current_as_of_ < asked_at)) {
        current_as_of_ = asked_at;
        changed_.notify_all();  // a barrier may wait for this (wait_through)
      }
      // Every record the reader handed on before this read was in the log
      // before it, so this store holds it: the reader's next ones follow.
      fed_ = stream_ != nullptr;
      return {};
    }
    if (!s.ok()) return s;
    std::string record;
    if (s = parts_.take(m, &record); !s.ok()) return s;
    if (!record.empty()) {
      if (s = apply_record(record, m.sequence); !s.ok()) return s;
    }
    std::lock_guard lock(mutex_);
    tail_ = m.sequence;
    changed_.notify_all();
  }
}

Status ShardReplica::apply_record(const std::string& record, std::uint64_t sequence) {
  auto group = std::make_shared<store::ChangeGroup>();
  if (Status s = store::decode_change_group(record, group.get()); !s.ok()) {
    // Nothing after it can be applied either: a follower that skipped it
    // would diverge. It stays here until the record is mended.
    return {Errc::corrupt, "log record " + std::to_string(sequence) + ": " + s.message};
  }
  if (group->schema > store::Store::kSchemaVersion) {
    return {Errc::unavailable, "log record " + std::to_string(sequence) +
                                   " was written by a newer memosd (store schema " +
                                   std::to_string(group->schema) + ")"};
  }
  std::string held;           // the digest of the record this store holds
  std::string held_previous;  // the digest that record follows
  std::uint64_t held_sequence;
  {
    std::lock_guard lock(mutex_);
    held = digest_;
    held_previous = previous_;
    held_sequence = position_;
  }
  const std::string digest = digest_of(record);
  // The record this store holds last, again: an append sent again because
  // its answer was lost (resolve_doubt()) that JetStream stored twice. It
  // changes nothing the first did not.
  if (!held.empty() && digest == held) {
    spdlog::debug("shard {}: record {} is record {} again; passed over", settings_.shard, sequence,
                  held_sequence);
    std::lock_guard lock(mutex_);
    ++passed_over_;
    return {};
  }
  // A sibling of the record this store holds: both follow the same record,
  // appended under the same fence by two nodes at once (a deposed owner's
  // last append and the new owner's barrier, which nats-server 2.9 may both
  // store: nats-server#4320). The first in the log counts, on every node;
  // its writer checked that it came first before it counted it
  // (check_first_after()), so no acknowledged write is passed over.
  if (!group->previous.empty() && group->previous == held_previous) {
    spdlog::warn(
        "shard {}: log record {} follows {} as record {} does, which came first: passed over",
        settings_.shard, sequence, short_hex(group->previous), held_sequence);
    std::lock_guard lock(mutex_);
    ++passed_over_;
    return {};
  }
  // A record from before the chain, or a store from before it, is taken as
  // it comes; the chain holds from the next record on.
  if (!group->previous.empty() && !held.empty() && group->previous != held) {
    std::string fault = "log record " + std::to_string(sequence) + " follows the record " +
                        short_hex(group->previous) + ", but this store holds " + short_hex(held) +
                        " (record " + std::to_string(held_sequence) + "): ";
    // The same gap, without any divergence, when the log was compacted past
    // what this node held while it ran (paused longer than the retention).
    const std::uint64_t floor = log_floor();
    const bool behind = floor > held_sequence;
    if (behind) {
      fault += "the log was compacted past it (it keeps this shard from record " +
               std::to_string(floor) +
               "), so it applies nothing more until memosd restarts and takes the newest store "
               "snapshot (memos-cluster(7), Log compaction)";
    } else {
      fault +=
          "its history and the log's differ, so it applies nothing more; "
          "rebuild this node from the log (memos-cluster(7), DIAGNOSTICS)";
    }
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      first = fault_.empty();
      fault_ = fault;
      changed_.notify_all();
    }
    if (behind && first && behind_observer_) behind_observer_(fault);
    return {Errc::corrupt, std::move(fault)};
  }
  if (Status s = hold_record(group, sequence, digest); !s.ok()) {
    return {s.code, "applying log record " + std::to_string(sequence) + ": " + s.message};
  }
  if (spdlog::should_log(spdlog::level::debug)) {  // no hex on the hot path otherwise
    spdlog::debug("shard {}: applied record {} (hash {})", settings_.shard, sequence,
                  short_hex(digest));
  }
  std::lock_guard lock(mutex_);
  ++applied_;
  return {};
}

std::uint64_t ShardReplica::log_floor() {
  std::optional<EtcdKeyValue> kv;
  if (!etcd_.get(log_floor_key(settings_.cluster), &kv).ok() || !kv) return 0;
  const auto j = nlohmann::json::parse(kv->value, nullptr, false);
  if (!j.is_object() || !j.contains("positions") || !j["positions"].is_array() ||
      j["positions"].size() <= settings_.shard ||
      !j["positions"][settings_.shard].is_number_unsigned())
    return 0;
  return j["positions"][settings_.shard].get<std::uint64_t>();
}

Status ShardReplica::hold_record(std::shared_ptr<const store::ChangeGroup> group,
                                 std::uint64_t sequence, const std::string& digest) {
  const std::uint32_t shard = settings_.shard;
  store::WriteJob job;
  auto on_commit = std::make_shared<std::function<void()>>();
  job.apply = [this, group, shard, sequence, digest, on_commit](store::WriteTxn& txn) {
    *on_commit = nullptr;
    // A lease that lapsed while this node appended makes it a follower that
    // may read its own record back before that record's group commits: the
    // writer commits groups in order, so the store says whether it has it.
    store::LogPosition held;
    if (Status h = txn.reader().log_position(shard, &held); !h.ok()) return h;
    if (held.sequence >= sequence) return Status{};
    Status a = txn.apply_changes(group->changes);
    if (a.ok() && apply_observer_) a = apply_observer_(txn, *group, on_commit.get());
    return a.ok() ? txn.set_log_position(shard, position_of(sequence, digest, group->previous)) : a;
  };
  job.done = [on_commit](const Status& st) {
    if (st.ok() && *on_commit) (*on_commit)();
  };
  job.from_log = true;
  job.shard = shard;  // the record's last id is its shard's (apply_changes checks)
  if (Status s = commits_.submit_and_wait(std::move(job)); !s.ok()) return s;
  std::lock_guard lock(mutex_);
  position_ = sequence;
  digest_ = digest;
  previous_ = position_of(sequence, digest, group->previous).previous;
  changed_.notify_all();
  return {};
}

Status ShardReplica::claim() {
  std::optional<EtcdKeyValue> holder;
  if (Status s = etcd_.get(owner_key(), &holder); !s.ok()) return s;
  if (holder) {
    free_since_.reset();
    std::lock_guard lock(mutex_);
    owner_node_ = holder->value;
    return {};
  }
  {
    std::lock_guard lock(mutex_);
    owner_node_.clear();
  }
  if (!free_since_) free_since_ = Clock::now();
  if (claim_gate_ && !claim_gate_(Clock::now() - *free_since_)) return {};
  // Free. Whoever owns it next must hold every acknowledged record first:
  // the leader's last sequence covers them all.
  std::uint64_t last = 0;
  if (Status s = js_.last_sequence(stream(), subject(), &last); !s.ok()) return s;
  spdlog::debug("shard {}: free; the log's last record is {}", settings_.shard, last);
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (Status s = follow(); !s.ok()) return s;
    {
      std::lock_guard lock(mutex_);
      if (tail_ >= last || stopping_) break;
    }
    // The replica that answered has not caught up with the leader yet.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::uint64_t tail;
  {
    std::lock_guard lock(mutex_);
    tail = tail_;
  }
  if (tail < last) return {Errc::unavailable, "could not catch up to claim the shard"};
  const auto ttl_s = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(
                                                   settings_.lease + std::chrono::milliseconds(999))
                                                   .count());
  const auto granted_at = Clock::now();
  std::int64_t lease = 0;
  if (Status s = etcd_.grant_lease(ttl_s, &lease); !s.ok()) return s;
  bool created = false;
  EtcdKeyValue taken;
  if (Status s = etcd_.create(owner_key(), settings_.node, lease, &created, &taken); !s.ok()) {
    etcd_.revoke(lease);
    return s;
  }
  if (!created) {
    etcd_.revoke(lease);  // another node claimed it first
    std::lock_guard lock(mutex_);
    owner_node_ = taken.value;
    return {};
  }
  std::lock_guard lock(mutex_);
  owner_ = true;
  behind_ = false;
  barrier_ = true;
  lease_ = lease;
  lease_valid_until_ = granted_at + std::chrono::seconds(ttl_s) - margin(settings_.lease);
  owner_node_ = settings_.node;
  free_since_.reset();
  spdlog::info("shard {}: this node ({}) holds its lease now, at log sequence {}", settings_.shard,
               settings_.node, position_);
  return {};
}

void ShardReplica::hand_over() {
  std::lock_guard lock(mutex_);
  handing_over_ = true;
}

void ShardReplica::give_back() {
  std::int64_t lease = 0;
  {
    std::lock_guard lock(mutex_);
    handing_over_ = false;
    if (!owner_) return;
    lease = lease_;
    owner_ = false;
    lease_ = 0;
    owner_node_.clear();
    changed_.notify_all();
  }
  tell_role();
  // Not claimed again at once: the claim gate keeps a node that owns more
  // than another from it (ShardBalancer).
  if (Status s = etcd_.revoke(lease); !s.ok()) {
    spdlog::warn("shard {}: the lease was not given back ({}); it lapses in {} ms", settings_.shard,
                 s.message, settings_.lease.count());
    return;
  }
  spdlog::info("shard {}: this node ({}) gave its lease back and follows", settings_.shard,
               settings_.node);
}

Status ShardReplica::keep_lease() {
  std::int64_t lease;
  {
    std::lock_guard lock(mutex_);
    lease = lease_;
  }
  const auto sent = Clock::now();
  std::int64_t ttl_s = 0;
  Status s = etcd_.keep_alive(lease, &ttl_s);
  std::lock_guard lock(mutex_);
  if (s.ok()) {
    lease_valid_until_ = sent + std::chrono::seconds(ttl_s) - margin(settings_.lease);
    return {};
  }
  if (s.code == Errc::not_found) {
    spdlog::warn("shard {}: the lease lapsed: this node no longer owns the shard", settings_.shard);
    owner_ = false;
    lease_ = 0;
    owner_node_.clear();
    return {};
  }
  return {s.code, "keeping the lease: " + s.message};  // owner() lapses on its own
}

Status ShardReplica::begin_group(const store::ChangeSet& changes, PendingGroup* out) {
  std::string previous;
  {
    std::lock_guard lock(mutex_);
    if (!owns_locked()) {
      // Worded as ClusterNode::writable(shard) words it ("the owner, node
      // n1"): a client sent the write to a node owning other shards, and
      // looks for the owner's name. scripts/cluster-test's writer did not
      // find it here and went round the nodes that named the other shards'
      // owners, acknowledging nothing for 36 s.
      return {Errc::unavailable, "this node (" + settings_.node + ") does not own shard " +
                                     std::to_string(settings_.shard) + " now" +
                                     (owner_node_.empty() || owner_node_ == settings_.node
                                          ? std::string(" and no other owner is known yet: retry")
                                          : ": writes go to the owner, node " + owner_node_)};
    }
    out->expected = tail_;
    out->epoch = lease_;
    previous = digest_;
  }
  out->previous = previous;
  const std::string record = store::encode_change_group(
      settings_.shard, out->epoch, store::Store::kSchemaVersion, previous, changes);
  out->digest = digest_of(record);
  std::vector<RecordPart> parts;
  if (Status s = split_record(record, nats_.max_payload(), &parts); !s.ok()) return s;
  if (parts.size() > 1) {
    // Parts are fenced each by the one before, whose sequence only its
    // acknowledgement tells: appended one after another, now.
    return append_record(record, out->expected, &out->sequence, &out->first);
  }
  out->in_flight.emplace();
  out->record = record;
  return js_.begin_append(subject(), out->record, out->expected, message_id_of(out->digest, 0),
                          &*out->in_flight);
}

Status ShardReplica::end_group(PendingGroup& pending, store::LogPosition* position) {
  if (pending.in_flight) {
    std::uint64_t actual = 0;
    Status s = js_.end_append(*pending.in_flight, &pending.sequence, &actual);
    pending.in_flight.reset();
    if (s.code == Errc::conflict) return fenced_out();
    if (!s.ok()) {
      note_in_doubt(
          {std::move(pending.record), pending.expected, message_id_of(pending.digest, 0), {}});
      return s;
    }
    tell_reader_appended(pending.sequence);
    pending.first = pending.sequence;
  }
  // Answered after the lease it was written under: a new owner may have
  // appended its barrier under the same fence meanwhile.
  bool late;
  {
    std::lock_guard lock(mutex_);
    late = !within_lease_locked(pending.epoch);
  }
  if (late) {
    if (Status s = check_first_after(pending.expected, pending.first); !s.ok()) return s;
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("shard {}: appended record {} (after {}, lease {}, hash {})", settings_.shard,
                  pending.sequence, pending.expected, pending.epoch, short_hex(pending.digest));
  }
  *position = position_of(pending.sequence, pending.digest, pending.previous);
  std::lock_guard lock(mutex_);
  position_ = tail_ = pending.sequence;
  digest_ = pending.digest;
  previous_ = position->previous;
  ++appended_;
  changed_.notify_all();
  return {};
}

void ShardReplica::tell_reader_appended(std::uint64_t sequence) {
  StreamReader* reader;
  {
    std::lock_guard lock(mutex_);
    reader = stream_;
  }
  // Outside this replica's lock: the reader takes its own only.
  if (reader) reader->appended(sequence);
}

Status ShardReplica::fenced_out() {
  std::lock_guard lock(mutex_);
  behind_ = true;
  changed_.notify_all();
  return {Errc::unavailable, "the log of shard " + std::to_string(settings_.shard) +
                                 " has records this node has not applied yet; retry"};
}

bool ShardReplica::within_lease_locked(std::int64_t epoch) const {
  return owner_ && lease_ == epoch && Clock::now() < lease_valid_until_;
}

Status ShardReplica::check_first_after(std::uint64_t fence, std::uint64_t first) {
  StoredMessage m;
  // From the stream's leader, which stored this node's record: it holds
  // every message before it.
  Status s = js_.next_message(stream(), fence + 1, subject(), &m);
  if (s.ok() && m.sequence == first) return {};
  {
    std::lock_guard lock(mutex_);
    behind_ = true;  // follow: it applies whichever came first
    changed_.notify_all();
  }
  if (!s.ok()) {
    return {Errc::unavailable, "could not tell whether log record " + std::to_string(first) +
                                   " came first after record " + std::to_string(fence) + " (" +
                                   s.message + "); retry"};
  }
  spdlog::warn(
      "shard {}: log record {} of another node came first after record {}, beside this node's "
      "record {}, which every node passes over",
      settings_.shard, m.sequence, fence, first);
  return {Errc::unavailable, "another node appended to shard " + std::to_string(settings_.shard) +
                                 " at the same time; this write did not count: retry"};
}

Status ShardReplica::append_record(const std::string& record, std::uint64_t expected,
                                   std::uint64_t* sequence, std::uint64_t* first) {
  std::vector<RecordPart> parts;
  if (Status s = split_record(record, nats_.max_payload(), &parts); !s.ok()) return s;
  const std::string digest = digest_of(record);
  *sequence = expected;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::uint64_t actual = 0;
    const std::string id = message_id_of(digest, parts.size() > 1 ? i + 1 : 0);
    const std::uint64_t fence = *sequence;
    Status s =
        js_.append(subject(), parts[i].bytes, fence, id, sequence, &actual, parts[i].headers);
    // Someone appended since this node's last record (a lost acknowledgement
    // of its own, or a node that believed it owned the shard): follow first.
    if (s.ok()) tell_reader_appended(*sequence);
    if (s.ok() && i == 0) *first = *sequence;
    if (s.code == Errc::conflict) return fenced_out();
    if (!s.ok()) {
      // Unanswered: it may be in the log. Parts already appended make an
      // incomplete group, which no node applies; the next append starts
      // after them, once the log answered for this one.
      note_in_doubt({std::string(parts[i].bytes), fence, id, parts[i].headers});
      return s;
    }
  }
  return {};
}

void ShardReplica::note_in_doubt(InDoubt message) {
  spdlog::warn(
      "shard {}: an append got no answer; this node appends nothing more until the log "
      "answers for it",
      settings_.shard);
  std::lock_guard lock(mutex_);
  in_doubt_ = std::move(message);
  behind_ = true;
  changed_.notify_all();
}

Status ShardReplica::resolve_doubt() {
  InDoubt message;
  {
    std::lock_guard lock(mutex_);
    if (!in_doubt_) return {};
    message = *in_doubt_;
  }
  std::uint64_t sequence = 0, actual = 0;
  Status s = js_.append(subject(), message.bytes, message.expected, message.message_id, &sequence,
                        &actual, message.headers);
  // Stored now or before (a duplicate answers with the first one's
  // sequence), or refused because a record follows its fence (this one
  // stored before, or another node's): either way the log has answered,
  // and following it applies what it holds. A duplicate still being
  // replicated answers with sequence 0: not yet.
  if (s.ok() && sequence == 0) s = {Errc::unavailable, "the log has not stored it yet"};
  if (!s.ok() && s.code != Errc::conflict) {
    return {s.code, "the append that got no answer: " + s.message};
  }
  spdlog::info(
      "shard {}: the log answered for the append that got no answer ({}); following it",
      settings_.shard,
      s.ok() ? "record " + std::to_string(sequence) : std::string("another record follows"));
  std::lock_guard lock(mutex_);
  in_doubt_.reset();
  changed_.notify_all();
  return {};
}

Status ShardReplica::append_barrier() {
  std::uint64_t expected;
  std::int64_t epoch;
  std::string previous;
  {
    std::lock_guard lock(mutex_);
    if (!owner_ || !barrier_ || behind_ || !fault_.empty()) return {};
    expected = tail_;
    epoch = lease_;
    previous = digest_;
  }
  auto group = std::make_shared<store::ChangeGroup>();
  group->shard = settings_.shard;
  group->epoch = static_cast<std::uint64_t>(epoch);
  group->schema = store::Store::kSchemaVersion;
  group->previous = previous;
  const std::string record = store::encode_change_group(*group);
  std::uint64_t sequence = 0, first = 0;
  if (Status s = append_record(record, expected, &sequence, &first); !s.ok()) {
    return {s.code, "taking the shard over: " + s.message};
  }
  // The deposed owner's last append may still be on its way through the
  // log's replication, under the same fence (docs/scale-out.md, "Siblings").
  if (Status s = check_first_after(expected, first); !s.ok()) {
    return {s.code, "taking the shard over: " + s.message};
  }
  // Held like any record: its position and digest go into the store.
  const std::string digest = digest_of(record);
  if (Status s = hold_record(group, sequence, digest); !s.ok()) {
    return {s.code, "taking the shard over: " + s.message};
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("shard {}: appended record {} (barrier after {}, lease {}, hash {})",
                  settings_.shard, sequence, expected, epoch, short_hex(digest));
  }
  std::lock_guard lock(mutex_);
  tail_ = sequence;
  barrier_ = false;
  ++appended_;
  spdlog::info("shard {}: this node ({}) writes it now, from log sequence {}", settings_.shard,
               settings_.node, sequence);
  changed_.notify_all();
  return {};
}

void sink_groups(std::span<ShardReplica* const> replicas, std::vector<store::SunkGroup>& groups) {
  std::vector<ShardReplica::PendingGroup> pending(groups.size());
  std::vector<bool> begun(groups.size(), false);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    store::SunkGroup& g = groups[i];
    if (!g.outcome.ok()) continue;
    if (g.shard >= replicas.size()) {
      g.outcome = {Errc::conflict, "a write of shard " + std::to_string(g.shard) +
                                       " in a cluster of " + std::to_string(replicas.size())};
      continue;
    }
    g.outcome = replicas[g.shard]->begin_group(*g.changes, &pending[i]);
    begun[i] = g.outcome.ok();
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (begun[i])
      groups[i].outcome = replicas[groups[i].shard]->end_group(pending[i], &groups[i].position);
  }
}

}  // namespace memos::cluster
