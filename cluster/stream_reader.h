// stream_reader.h — one reader of the whole log per node (docs/scale-out.md,
// "One reader per node"). Every shard's records are messages of one stream;
// the reader reads them in stream order, whatever their subject, and hands
// each to its shard's replica (ShardReplica::take), which applies it while it
// follows. A node therefore holds every shard it follows through one stream
// sequence, and a read barrier needs one question of the log and at most one
// read, whatever the shard count (before, each shard read its own subject:
// a follower's read cost one read of the log per shard).
//
// The reader only speeds a replica up; it is not the replica's only way in.
// A replica that owns its shard writes its own records and ignores the
// reader's; one that could not apply what the reader handed it (a record
// off its chain, a full store) reads its own subject again from where it
// stands until it holds the subject's end, and takes the reader's records
// from then on (ShardReplica, "fed").
//
// A node all of whose replicas own their shards (or read their own subjects)
// has nothing to feed: its reader reads only while a read barrier waits on
// it, and never reads back what the node appended (skip_held()). A node that
// owns some shards and follows others does not read back its appends either:
// its replicas tell the reader each sequence they appended (appended()), the
// reader steps over those without asking the log, and the appends to the
// shards it owns do not wake it. Reading them back cost the owner a request
// of the log's leader per write, and a third more write latency at 4 shards
// than at one (docs/scale-out.md, "One reader per node").
//
// Threading: one thread (start()) reads; as a LogView, from any thread. The
// replicas outlive the reader; stop() it before them.
//
// Errors (store::Status): start() — unavailable (NATS); log_end() —
// unavailable; wait_through() — unavailable (not within the timeout, or
// stopping).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/jetstream.h"
#include "cluster/read_barrier.h"
#include "cluster/trouble_log.h"

namespace memos::cluster {

class ShardReplica;

// What the reader did with the log's messages (memctl metrics).
struct StreamReaderCounters {
  // Read from the log and handed to a shard this node did not own then.
  std::uint64_t followed = 0;
  // Read although the node owned their shard: its own appends, read before
  // their acknowledgement came, or those of a node that deposed it.
  std::uint64_t read_back = 0;
  std::uint64_t stepped_over = 0;  // this node's own appends, not read
};

class StreamReader : public LogView {
 public:
  // `cluster` names the stream and its subjects (ReplicaSettings::cluster);
  // `shards`: every shard's replica, in shard order, each told to read
  // through this reader (ShardReplica::read_through) before it starts.
  // `poll`: how often the log is read when no wake-up came.
  StreamReader(std::string cluster, std::vector<ShardReplica*> shards, NatsConnection& nats,
               std::chrono::milliseconds poll, std::chrono::milliseconds request_timeout);
  ~StreamReader() override;  // stop()
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // Subscribes to the log's appends and starts the thread, which reads
  // from what the replicas hold (skip_held()). Errors: unavailable.
  Status start();
  // Ends the thread; idempotent.
  void stop();

  // Whether every record through `sequence` was handed to its shard, or a
  // read asked after `asked_at` found nothing more (the stream ended in
  // what was handed).
  bool holds_through(std::uint64_t sequence, Clock::time_point asked_at) const;
  // The last stream sequence handed on or skipped as held (0: none yet).
  std::uint64_t position() const;
  // Messages read from the log so far.
  std::uint64_t messages_read() const;
  StreamReaderCounters counters() const;

  // A replica of this node appended the record at `sequence` (acknowledged
  // by the log): the reader steps over it, as its store holds it once its
  // group commits (what skip_held() assumes of an owner's whole subject).
  // Only a hint: the last kMaxOwnAppends are remembered, and one the reader
  // read already is forgotten. From any thread.
  void appended(std::uint64_t sequence);
  static constexpr std::size_t kMaxOwnAppends = 1 << 16;

  // LogView. When a read last found nothing more (nullopt: not yet).
  std::optional<Clock::time_point> current_as_of() const override;
  // The stream's last sequence (its state, without any record's body).
  Status log_end(std::uint64_t* sequence) override;
  // Waits until holds_through(sequence, asked_at); wakes the thread first.
  Status wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                      std::chrono::milliseconds timeout) override;
  void read_soon() override;

 private:
  void run();
  // holds_through() with mutex_ held.
  bool holds_locked(std::uint64_t sequence, Clock::time_point asked_at) const;
  // Hands on every message after position_. Errors: the log's.
  Status read();
  // Moves position_ past what no fed replica lacks (their tails; an
  // owner's whole subject), so that a node does not read back its own
  // appends, nor, restarted, read the stream from a shard's last record long
  // ago.
  void skip_held();
  // Moves position_ over this node's own appends right after it, and
  // forgets those at or below it (mutex_ held).
  void step_over_own_locked();
  // Whether a message on `subject` should wake the thread: not an append
  // to a shard this node owns (its own, or a deposed owner's, which its
  // replica learns of by its fencing).
  bool wakes(const std::string& subject) const;

  const std::string cluster_;
  const std::string stream_;    // log_stream()
  const std::string subjects_;  // all_shards_filter()
  const std::vector<ShardReplica*> shards_;
  NatsConnection& nats_;
  JetStream js_;
  const std::chrono::milliseconds poll_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable changed_;
  std::uint64_t position_ = 0;
  std::optional<Clock::time_point> current_as_of_;
  std::uint64_t messages_read_ = 0;
  std::uint64_t read_back_ = 0;
  std::uint64_t stepped_over_ = 0;
  std::set<std::uint64_t> own_;  // appended(), above position_
  int waiting_ = 0;              // wait_through() calls waiting
  bool woken_ = false;
  bool stopping_ = false;
  std::uint64_t wake_sid_ = 0;
  TroubleLog trouble_{"reading the log", "goes on"};  // the thread's own
  std::thread thread_;
};

}  // namespace memos::cluster
