// read_barrier.h — a read on any node that sees every write the log
// acknowledged before the read arrived (docs/scale-out.md, "Any node
// answers").
//
// An owner within its lease holds the whole log: no other node can have
// appended since it claimed the shard, and its own writes commit before they
// are answered. Any other node — a follower, an owner whose lease is in doubt
// — asks the log's leader where the log ends and waits until its store
// holds the shard that far, as a Raft follower serves a read at the
// leader's read index. Reads that wait together share that one round trip: each round
// asks once, for every read that arrived before it asked. A read that accepts
// bounded staleness skips the round trip when the node was last known
// current within the bound.
//
// What it does not promise: the log's leader answers the question alone,
// and one that has just lost an election may answer from a log a record
// short (docs/scale-out.md, "Reading the log"); a read in that instant may
// miss a write acknowledged in the same instant.
//
// Threading: wait() from any thread; `done` runs on the caller's thread
// (answered at once) or on the barrier's own thread. stop() (and the
// destructor) answers what still waits with unavailable, and what comes
// after.
//
// Errors passed to `done`: unavailable — the log did not answer, or this
// node did not catch up within the timeout (a follower rebuilding, a deposed
// owner), or it stopped applying the log for good (off the chain); the
// message says how stale this node's store was last known to be, so the
// caller may accept that much staleness.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "memcube/store_types.h"

namespace memos::cluster {

// What the barrier needs of a node's replica (ShardReplica implements it;
// tests use a model).
class LogView {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~LogView() = default;
  // When this node's store last held the whole log: now for an owner within
  // its lease; for others, when a read of the log last found nothing past
  // what the store holds. nullopt: not known.
  virtual std::optional<Clock::time_point> current_as_of() const = 0;
  // Where the log ends, as its leader says now: a sequence at or past the
  // shard's last record (a log shared by shards may end in another's).
  // Errors: unavailable.
  virtual store::Status log_end(std::uint64_t* sequence) = 0;
  // Waits until the store holds every record of the shard through
  // `sequence`, which was the log's end at `asked_at`. Errors: unavailable
  // (not within `timeout`), corrupt (the replica stopped off the chain).
  virtual store::Status wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                                     std::chrono::milliseconds timeout) = 0;
  // Starts reading the log now, for a wait_through() to come: a node
  // replicating several shards starts every shard's read at once, rather
  // than one after another. The default does nothing.
  virtual void read_soon() {}
};

struct ReadBarrierCounters {
  std::uint64_t current = 0;  // served at once: an owner, or a follower within the bound
  std::uint64_t waited = 0;   // served after a round
  std::uint64_t failed = 0;   // refused (unavailable, corrupt)
  std::uint64_t rounds = 0;   // questions asked of the log
};

class ReadBarrier {
 public:
  using Done = std::function<void(const store::Status&)>;

  // `log` outlives the barrier. A round waits `timeout` at most for this
  // node to catch up.
  ReadBarrier(LogView& log, std::chrono::milliseconds timeout);
  ~ReadBarrier();  // stop()
  ReadBarrier(const ReadBarrier&) = delete;
  ReadBarrier& operator=(const ReadBarrier&) = delete;

  // Calls `done` once this node's store holds every record the log held
  // when wait() was called, or at once if it was current within
  // `max_staleness` (0: only an owner within its lease is). Errors: above.
  void wait(std::chrono::milliseconds max_staleness, Done done);
  // Whether a read may be served now, with no round (counted when true):
  // lets a caller skip what waiting would cost it (copying the request).
  bool current_within(std::chrono::milliseconds max_staleness);
  ReadBarrierCounters counters() const;
  // Ends the thread after its round; idempotent. Then wait() refuses.
  void stop();

 private:
  void run();
  // Why a round failed, as unavailable, with how stale this node was last
  // known to be.
  store::Status refusal(const store::Status& s) const;

  LogView& log_;
  const std::chrono::milliseconds timeout_;
  mutable std::mutex mutex_;  // guards what follows but thread_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<Done> waiting_;  // for the next round
  ReadBarrierCounters counters_;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace memos::cluster
