// shard_replica.h — one node's part in replicating one shard through the log
// (docs/scale-out.md, "The log" and "Ownership in etcd"). While the node
// holds the shard's lease in etcd it is the shard's owner: the commit queue's
// groups are appended to the shard's subject, fenced by the last sequence
// this node holds, before they commit. Otherwise it follows: it applies what
// the owner appended, in order, each record in one transaction with its
// sequence (WriteTxn::set_log_position), so a restart resumes where it was.
// A follower claims the shard when its owner's key is gone (the lease
// lapsed), and only once it holds the log up to the subject's last sequence;
// it writes once an empty record fenced by its tail is in the log (what the
// log's leader said was last may be stale under a partition; the fence is not).
// Records are chained (ChangeGroup::previous): a record that does not follow
// the one this store holds stops the replica for good (state().fault), since
// this store and the log then tell different histories (docs/scale-out.md,
// "The chain").
//
// On a node, one reader of the whole stream (stream_reader.h) hands each
// shard its records (take()) while the shard is "fed": while it follows,
// since it last held its subject's end by a read of its own (at start too). An owner,
// or a follower that could not apply what it was handed, is not fed: it
// reads its own subject until it holds its end again. Without a reader
// (tests, benches) the replica always reads its own subject.
//
// Threading: the commit queue's writer calls sink(); one thread (start())
// keeps the lease alive, claims the shard and follows; the stream reader's
// thread calls take(). Records to apply go through the commit queue as
// from_log jobs, one at a time (apply_mutex_). As a LogView, it tells a
// ReadBarrier (read_barrier.h) whether its store is current, from any thread.
//
// Errors (store::Status) from sink(): unavailable — this node does not own
// the shard now (the message names the owner when known), or the log did not
// acknowledge (no quorum, a timeout); the caller's write is not acknowledged
// and may be retried (against the owner).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/jetstream.h"
#include "cluster/read_barrier.h"
#include "cluster/record_parts.h"
#include "cluster/trouble_log.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"

namespace memos::cluster {

class StreamReader;

struct ReplicaSettings {
  std::string cluster = "memos";  // names the stream, its subjects and the etcd prefix
  std::string node;               // this node's id, unique in the cluster
  std::uint32_t shard = 0;
  int replicas = 3;  // of the stream, when this node creates it
  std::chrono::milliseconds lease{3000};
  // How often a follower looks for records when no wake-up came (the
  // owner's appends also wake it through a subscription).
  std::chrono::milliseconds poll{200};
};

// What a replica is doing, for `memctl cluster status` and tests.
struct ReplicaState {
  bool owner = false;
  std::string owner_node;      // as etcd last said; "" if none
  std::uint64_t position = 0;  // the log sequence this store holds
  std::uint64_t appended = 0;  // records this node appended
  std::uint64_t applied = 0;   // records this node applied as a follower
  // Records this node read and passed over: the same record stored twice,
  // or a sibling of the record it holds stored after it (docs/scale-out.md,
  // "Siblings").
  std::uint64_t passed_over = 0;
  std::int64_t epoch = 0;  // the lease it owns under; 0 when following
  std::string digest;      // of the record at `position` (store::LogPosition)
  // Why this replica stopped applying the log for good ("" while it runs):
  // a record that does not follow this store's history.
  std::string fault;
  // The node's stream reader hands it its records (false: it reads its own
  // subject, as an owner or a replica catching up does).
  bool fed = false;
  // Its last append got no answer: it appends nothing more until the log
  // answers for that message (docs/scale-out.md, "Unanswered appends").
  bool in_doubt = false;
};

class ShardReplica : public LogView {
 public:
  ShardReplica(ReplicaSettings settings, store::Store& store, store::CommitQueue& commits,
               NatsConnection& nats, EtcdClient& etcd);
  ~ShardReplica() override;  // stop(true)
  ShardReplica(const ShardReplica&) = delete;
  ShardReplica& operator=(const ShardReplica&) = delete;

  // Makes sure the stream exists, reads the store's position, and starts the
  // thread. Errors: unavailable (NATS or etcd), conflict (the stream exists
  // with other settings), corrupt, io.
  Status start();
  // Makes `reader` hand this replica its records (take()); before start().
  // The reader outlives the replica's use of it (stop the reader first).
  void read_through(StreamReader* reader);
  // The stream reader's next message of this shard's subject, in stream
  // order: applied while the replica is fed and does not hold it; ignored
  // otherwise. A record it cannot apply leaves it unfed (its own thread then
  // reads its subject again from where it stands); an owner is unfed too.
  void take(const StoredMessage& m);
  // For the stream reader: the highest sequence up to `sequence` that the
  // reader may skip for this replica. That is `sequence` while it owns the
  // shard within its lease, which unfeeds it (so the reader need not read
  // back what it wrote), and while it is not fed (should it follow, it reads
  // its own subject to its end before the reader's records are its again);
  // else the last message it read or appended, capped at `sequence`.
  std::uint64_t held_through(std::uint64_t sequence);
  // The last message of its subject it read or appended.
  std::uint64_t tail() const;
  // Ends the thread. `give_back`: an owner revokes its lease so that a
  // follower takes over at once; false leaves it to lapse (as a crash would).
  void stop(bool give_back);

  // The commit queue's change sink for this shard, in two halves, so that
  // every shard's group of a commit turn is in flight at once
  // (sink_groups()). begin_group: as the owner within its lease, encodes the
  // group on the shard's chain and sends it, fenced by the shard's tail (a
  // record in several parts is appended there and then, each part fenced by
  // the one before); end_group: waits for the quorum's acknowledgement and
  // moves the tail on. Writer thread only; one group in flight at a time; a
  // begun group must be ended. Errors: unavailable (this node does not own
  // the shard now, naming the owner it knows; the log is ahead of this node:
  // it follows first; no quorum; a timeout), conflict (too large for the
  // log), corrupt (JetStream's reply).
  struct PendingGroup {
    std::uint64_t expected = 0;                         // the tail it is fenced by
    std::int64_t epoch = 0;                             // the lease it is written under
    std::string digest;                                 // the record's
    std::string previous;                               // the digest it follows
    std::optional<JetStream::PendingAppend> in_flight;  // one part, sent
    std::string record;                                 // sent whole: kept until answered
    std::uint64_t first = 0;                            // several parts: the first's sequence
    std::uint64_t sequence = 0;                         // several parts, appended
  };
  Status begin_group(const store::ChangeSet& changes, PendingGroup* out);
  Status end_group(PendingGroup& pending, store::LogPosition* position);

  // Called on the writer thread in each applied record's transaction, after
  // its rows: what a follower derives from rows (its indexes) learns of them
  // here, as the owner's handlers learn of their writes. It may set
  // `*on_commit`, which runs on the writer thread once the record is
  // committed (a transaction run again calls the observer again, afresh).
  // Its refusal fails the record, which is tried again. Set before start().
  using ApplyObserver = std::function<Status(store::WriteTxn&, const store::ChangeGroup&,
                                             std::function<void()>* on_commit)>;
  void set_apply_observer(ApplyObserver observer) { apply_observer_ = std::move(observer); }
  // Called on the replica's thread when this node becomes the shard's owner
  // (true: its barrier is in the log, so its store holds the whole log) or
  // stops being it (false; also at stop()): state an owner keeps
  // in memory is reloaded from the store it now writes. Set before start().
  using RoleObserver = std::function<void(bool owner)>;
  void set_role_observer(RoleObserver observer) { role_observer_ = std::move(observer); }
  // Asked before claiming a free shard, with how long this replica has seen
  // it free: false leaves it to another node for now (ShardBalancer). Set
  // before start(); none: claim at once.
  using ClaimGate = std::function<bool(std::chrono::steady_clock::duration free_for)>;
  void set_claim_gate(ClaimGate gate) { claim_gate_ = std::move(gate); }
  // Called once, on the thread that applies records, when this replica
  // stops at a record that does not follow its store because the log was
  // compacted past what the store holds (a node paused or cut off longer
  // than cluster.log_retention_s, or one that started as compaction ran):
  // only the newest store snapshot brings it back. `fault` is what
  // state().fault says. Must not block. Set before start().
  using BehindObserver = std::function<void(const std::string& fault)>;
  void set_behind_observer(BehindObserver observer) { behind_observer_ = std::move(observer); }
  // Gives the shard back at the thread's next lease check, if it owns it:
  // the lease is revoked, so another node claims it at once (its writes,
  // forwarded, wait that long). Thread-safe.
  void hand_over();

  bool owner() const;
  // Whether the stream reader hands it its records (see take()).
  bool fed() const;
  ReplicaState state() const;
  // Waits until this store holds the log up to `sequence`.
  bool wait_position(std::uint64_t sequence, std::chrono::milliseconds timeout) const;
  std::uint32_t shard() const { return settings_.shard; }
  std::string subject() const;
  std::string stream() const;
  std::string owner_key() const;

  // LogView: an owner within its lease is current now; another node was
  // when its last read of the log found nothing more (the stream reader's,
  // while fed), or when a barrier's wait_through() last came true.
  std::optional<Clock::time_point> current_as_of() const override;
  // The stream's last sequence (its state, without any record's body: the
  // shard's last record may be a large group, and a barrier asks once a
  // read). Errors: unavailable.
  Status log_end(std::uint64_t* sequence) override;
  // Holds the shard through `sequence` at once while it owns the shard
  // within its lease (no other node can have appended), else once every
  // message of its subject up to it was read (parts of a group still coming,
  // or abandoned, included: no write they carry was acknowledged by then),
  // or once a read of the subject asked after `asked_at` found nothing more
  // (the stream's last record was another shard's), or, while fed, once the
  // stream reader holds through it (ask the reader first: ReplicaSet does).
  // Wakes the thread to read at once.
  Status wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                      std::chrono::milliseconds timeout) override;
  // Wakes the thread to read its subject now.
  void read_soon() override;

 private:
  void run();
  // Applies every record after the tail, through the commit queue; fed once
  // it holds the subject's end (with a stream reader).
  Status follow();
  // Decodes a record and applies it through the writer, with its sequence,
  // once it is known to follow the record this store holds. Errors: corrupt
  // (a record that does not decode, or off this store's chain: fault_ set).
  Status apply_record(const std::string& record, std::uint64_t sequence);
  // Commits a record's changes with its position and digest through the
  // writer (a from_log job) and waits; a record the store already holds
  // (its owner's own append, read back while the owner's lease lapsed) is
  // not applied twice. Errors: the job's.
  Status hold_record(std::shared_ptr<const store::ChangeGroup> group, std::uint64_t sequence,
                     const std::string& digest);
  // Appends a record after `expected`, in parts if it is large, each fenced
  // by the one before; `*sequence` gets its last part's, `*first` its
  // first's. Errors: unavailable (the log is ahead of this node: behind_
  // set; no quorum; a timeout), conflict (too large for the log).
  Status append_record(const std::string& record, std::uint64_t expected, std::uint64_t* sequence,
                       std::uint64_t* first);
  // Whether this node's record, appended after `fence` with its first part
  // at `first`, is the first after its fence in the log: what every node
  // applies (a sibling stored after it is passed over). Asked where another
  // node may have appended under the same fence at the same time (a new
  // owner's barrier; an append answered after this node's lease), since
  // nats-server 2.9 may store both (nats-server#4320). Errors: unavailable
  // (another record came first: behind_ set, the caller's record is passed
  // over; or the log did not answer: behind_ set, it may count).
  Status check_first_after(std::uint64_t fence, std::uint64_t first);
  // Within the lease it was written under (mutex_ held): no other node can
  // have appended before its record was stored.
  bool within_lease_locked(std::int64_t epoch) const;
  // An append's fencing failed: someone appended since this node's last
  // record. Sets behind_ (follow before appending again) and says so.
  Status fenced_out();
  // A new owner's first record, empty and fenced by its tail, as a Raft
  // leader's no-op opens its term: once the log takes it, no record this
  // node has not applied can exist, so it may write. Until then it does not
  // (owns_locked()). Errors: append_record's, hold_record's.
  Status append_barrier();
  // Claims the free shard: catches up to the subject's last sequence first.
  Status claim();
  Status keep_lease();
  // Revokes the lease and follows (hand_over()).
  void give_back();
  // Owner, caught up, and within the lease (mutex_ held).
  bool owns_locked() const;
  // Logs a failure of the thread's work, once while it lasts.
  void report(const Status& s);
  // Tells the role observer when ownership changed since it last heard.
  void tell_role();
  // Tells the stream reader, if any, that this node appended `sequence`
  // itself, so that it does not read it back (StreamReader::appended()).
  void tell_reader_appended(std::uint64_t sequence);
  // This shard's floor in the log (/memos/<cluster>/log_floor: compaction
  // may have removed its records up to it), 0 when unknown.
  std::uint64_t log_floor();

  const ReplicaSettings settings_;
  store::Store& store_;
  store::CommitQueue& commits_;
  NatsConnection& nats_;
  JetStream js_;
  EtcdClient& etcd_;

  StreamReader* stream_ = nullptr;  // set before start()
  // Held while a record is read and applied (follow(), take()), so that the
  // replica's thread and the stream reader apply each record once, in
  // order. Taken before mutex_, never on the writer thread.
  std::mutex apply_mutex_;
  mutable std::mutex mutex_;  // guards what follows
  mutable std::condition_variable changed_;
  std::uint64_t position_ = 0;  // the last record applied (or appended) here
  std::string digest_;          // its digest; empty: unknown (a store from before the chain)
  std::string previous_;        // the digest it follows; empty: unknown
  std::string fault_;           // set once, never cleared: see ReplicaState::fault
  // The last message read or appended: past position_ while a group's parts
  // are still coming, or after parts of a group its writer abandoned. An
  // owner's next append expects it.
  std::uint64_t tail_ = 0;
  std::uint64_t appended_ = 0, applied_ = 0, passed_over_ = 0;
  // When this store last held the whole log, as a follower's read or a
  // read barrier found it (see current_as_of()).
  std::optional<Clock::time_point> current_as_of_;
  std::int64_t lease_ = 0;  // held while owner
  std::chrono::steady_clock::time_point lease_valid_until_{};
  bool owner_ = false;
  bool behind_ = false;        // an append found the log ahead: follow before appending again
  bool handing_over_ = false;  // hand_over() asked
  bool barrier_ = false;       // claimed, but the barrier is not in the log yet
  std::string owner_node_;
  bool stopping_ = false;
  bool woken_ = false;
  // The stream reader hands this replica every record of its subject past
  // tail_ (see take()); false without a reader.
  bool fed_ = false;
  PartAssembler parts_;         // under apply_mutex_
  std::uint64_t wake_sid_ = 0;  // the subscription to the shard's subject
  TroubleLog trouble_;          // the thread's own
  ApplyObserver apply_observer_;
  RoleObserver role_observer_;
  bool told_owner_ = false;  // what the role observer last heard (thread's own)
  ClaimGate claim_gate_;
  BehindObserver behind_observer_;
  // When this replica first saw the shard free, in the free spell now
  // (thread's own).
  std::optional<std::chrono::steady_clock::time_point> free_since_;
  // A message of this replica whose append was not answered: it may be in
  // the log, or land there later. nats-server 2.9 checks a clustered
  // append's expected last sequence against the messages it has applied,
  // not those still being replicated (nats-server#4320), so a second
  // append under the same fence could land beside it and fork the chain.
  // Until the log answers for it (resolve_doubt()) nothing else is
  // appended: the same message is sent again under its message id, which
  // JetStream answers with the first one's sequence if it stored it.
  struct InDoubt {
    std::string bytes;
    std::uint64_t expected = 0;
    std::string message_id;
    Headers headers;
  };
  std::optional<InDoubt> in_doubt_;  // guarded by mutex_
  // Remembers an unanswered append (and makes the replica follow, so that
  // it applies whatever the log holds before it appends again).
  void note_in_doubt(InDoubt message);
  // Sends the message in doubt again; success once the log answered for it
  // (stored, a duplicate, or refused because another record follows its
  // fence), unavailable while it does not.
  Status resolve_doubt();
  std::thread thread_;
};

// The commit queue's change sink (CommitQueue::set_change_sink) over every
// shard's replica, `replicas[shard]`: each group's append is begun before any
// is awaited, so a turn with groups of k shards costs one quorum round trip,
// not k (each is fenced on its own subject, so they do not wait on each
// other). A group whose outcome is already an error is left as it is; one of
// a shard not in `replicas` gets conflict. Writer thread only.
void sink_groups(std::span<ShardReplica* const> replicas, std::vector<store::SunkGroup>& groups);

}  // namespace memos::cluster
