// shard_replica.cpp — ShardReplica's life (start, the thread's turns, stop),
// its state, and its following half: the log read through, each record
// applied only if it follows the record the store holds. Appending is in
// shard_replica_append.cpp, the lease in shard_replica_lease.cpp.
#include "cluster/shard_replica.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "cluster/log_floor.h"
#include "cluster/names.h"
#include "cluster/record_chain.h"
#include "cluster/stream_reader.h"
#include "memcube/record_codec.h"

namespace memos::cluster {

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
  return within_lease_locked(lease_) && !behind_ && !barrier_ && fault_.empty();
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
  st.in_doubt = in_doubt_.has_value();
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
  std::vector<std::uint64_t> floor;
  if (!read_log_floor(etcd_, settings_.cluster, &floor).ok() || floor.size() <= settings_.shard)
    return 0;
  return floor[settings_.shard];
}

Status ShardReplica::hold_record(std::shared_ptr<const store::ChangeGroup> group,
                                 std::uint64_t sequence, const std::string& digest) {
  const std::uint32_t shard = settings_.shard;
  store::WriteJob job;
  auto on_commit = std::make_shared<std::function<void()>>();
  const store::LogPosition position = position_of(sequence, digest, group->previous);
  job.apply = [this, group, shard, sequence, position, on_commit](store::WriteTxn& txn) {
    *on_commit = nullptr;
    // A lease that lapsed while this node appended makes it a follower that
    // may read its own record back before that record's group commits: the
    // writer commits groups in order, so the store says whether it has it.
    store::LogPosition held;
    if (Status h = txn.reader().log_position(shard, &held); !h.ok()) return h;
    if (held.sequence >= sequence) return Status{};
    Status a = txn.apply_changes(group->changes);
    if (a.ok() && apply_observer_) a = apply_observer_(txn, *group, on_commit.get());
    return a.ok() ? txn.set_log_position(shard, position) : a;
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
  previous_ = position.previous;
  changed_.notify_all();
  return {};
}

}  // namespace memos::cluster
