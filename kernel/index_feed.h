// index_feed.h — the queue between the writer thread and the indexer thread:
// committed changes in commit order, and who waits for them to be
// searchable.
//
// A write is answered once its commit is durable; its embedding and
// indexing come after, on one indexer thread (docs/design.md, "Durability
// contract"). The writer numbers each write it hands over (accept(), before
// the write is answered, so a client that holds an answer knows its write
// is numbered) and posts each commit group's changes after the commit. The
// indexer takes everything posted since its last turn as one batch (many
// commit groups: the busier the writer, the larger the batches), hands it to
// `process`, then counts those writes as indexed, records how long each
// group waited, and calls the waiters whose write is now indexed: a write
// that asked to be answered once searchable, a search that asked to see
// every write answered before it.
//
// Backpressure: the writer calls wait_for_room() after posting; while more
// than `max_backlog` writes (or `max_backlog_bytes` of their text) wait for
// the indexer it blocks, so new commit groups, and with them the writers'
// answers, slow to the indexer's pace instead of the lag growing without
// bound.
//
// Thread-safe. No errors: `process` reports its own failures (IndexSet
// marks what it could not index for a rebuild).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memcube/store.h"

namespace memos::kernel {

// One committed change, as the indexer needs it.
struct IndexChange {
  enum class Kind : char {
    index,       // `item` is live: (re)index it
    attributes,  // `item` is live with the same text: its filter attributes changed
    remove,      // `item.id` is gone (a tombstone, an expiry)
    drop,        // the cube is gone: forget its collections
  };
  Kind kind = Kind::index;
  store::CubeId cube = 0;
  std::string cube_name;
  std::uint32_t dimension = 0;  // the cube's embedding dimension
  std::uint64_t version = 0;    // the cube version it brings; 0: none (an expiry)
  store::Item item;
};

// How far indexing is behind, for `memctl status` and the benchmarks.
struct IndexLag {
  std::uint64_t backlog = 0;    // writes answered and not yet searchable
  double oldest_ms = 0;         // how long the oldest of them has waited
  double freshness_p50_ms = 0;  // commit to searchable, over recent commit groups
  double freshness_p99_ms = 0;
  std::uint64_t indexed = 0;  // writes made searchable since the start
};

class IndexFeed {
 public:
  using Process = std::function<void(std::vector<IndexChange>& batch)>;

  // Starts the indexer thread. `process` runs on it, one batch at a time.
  IndexFeed(Process process, std::size_t max_backlog, std::size_t max_backlog_bytes);
  ~IndexFeed();  // stop()
  IndexFeed(const IndexFeed&) = delete;
  IndexFeed& operator=(const IndexFeed&) = delete;

  // Writer thread: numbers one write whose changes the next post() carries.
  // Returns its number, for when_indexed().
  std::uint64_t accept();
  // The number of the last write accepted. Any thread.
  std::uint64_t accepted() const { return accepted_.load(std::memory_order_acquire); }
  // Writer thread, after the commit: the changes of the writes accepted
  // since the last post, in commit order.
  void post(std::vector<IndexChange> changes);
  // Any thread: runs `work` on the indexer thread once everything posted
  // before it is processed (a rebuild that must not race the changes).
  // After stop() it is dropped.
  void post_barrier(std::function<void()> work);
  // Calls `fn` once write `number` is indexed: at once, on this thread, if
  // it is; else on the indexer thread. After stop(), at once.
  void when_indexed(std::uint64_t number, std::function<void()> fn);
  // Writer thread: blocks while the backlog is over its bounds (never
  // after stop()).
  void wait_for_room();
  IndexLag lag() const;
  // Processes everything posted, calls every waiter, ends the thread.
  // Idempotent.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::vector<IndexChange> changes;
    std::function<void()> barrier;  // set: a barrier, no changes
    std::uint64_t last = 0;         // the last write number it carries
    std::size_t bytes = 0;
    Clock::time_point posted;
  };
  void run();
  // Processes `entries` in order: runs of change entries as one batch,
  // each barrier in its place. Indexer thread, without the lock.
  void process_entries(std::deque<Entry>& entries);
  void finish(std::uint64_t last, std::size_t bytes, const std::vector<Clock::time_point>& posted);
  bool over_bounds_locked() const;

  Process process_;
  const std::size_t max_backlog_;
  const std::size_t max_backlog_bytes_;

  std::atomic<std::uint64_t> accepted_{0};
  std::uint64_t posted_last_ = 0;  // writer thread

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the indexer: work, or stop
  std::condition_variable room_;  // the writer: the backlog shrank
  std::deque<Entry> queue_;
  std::uint64_t indexed_ = 0;
  std::size_t queued_bytes_ = 0;  // text of changes posted, not yet processed
  std::multimap<std::uint64_t, std::function<void()>> waiters_;
  // Commit-to-searchable times of recent groups (ms), a ring.
  static constexpr std::size_t kLagSamples = 4096;
  std::vector<float> lags_;
  std::size_t lag_next_ = 0;
  Clock::time_point oldest_posted_{};  // of the entries not yet processed
  bool busy_ = false;                  // the indexer holds taken entries
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace memos::kernel
