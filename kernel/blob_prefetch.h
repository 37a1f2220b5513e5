// kernel/blob_prefetch.h — a follower fetching, on a thread of its own, the
// blobs (KV states, adapters) that the records it applies reference, so that
// it holds them before it first needs them (cluster.prefetch_blobs,
// memos-cluster(7)).
//
// Without it a node fetches a blob when it first uses it
// (BlobStore::make_local): the first restore of a state on a node that took
// over waits for the bucket. With it, every node's disk holds every blob, as
// every node's store holds every record.
//
// Best effort, never in the way of the log: want() does not block on the
// bucket; at most kMaxQueued blobs wait, and a want past that is dropped
// (the blob is fetched on first use instead). A fetch that fails is logged
// and counted, not retried: the first use fetches it again. Behind the
// wants, a backlog: what the node's store referenced before it prefetched
// (a node that turned prefetching on, or came back from a backup). The
// backlog is every blob the store references, held or not: which are held is
// found here, on the prefetch thread, so a large store adds no stat per blob
// to memosd's start; one line in the log says what the backlog did.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "memcube/blob_store.h"

namespace memos::kernel {

struct PrefetchCounters {
  std::uint64_t fetched = 0;  // blobs this node now holds thanks to it
  std::uint64_t failed = 0;   // fetches that failed (fetched again on use)
  std::uint64_t dropped = 0;  // wants past the queue's bound
};

class BlobPrefetch {
 public:
  static constexpr std::size_t kMaxQueued = 4096;

  // `blobs` outlives this, and shares through a bucket while it runs.
  explicit BlobPrefetch(store::BlobStore& blobs);
  ~BlobPrefetch();  // stops after the fetch under way; what waits is not fetched
  BlobPrefetch(const BlobPrefetch&) = delete;
  BlobPrefetch& operator=(const BlobPrefetch&) = delete;

  // Queues blob `id`, of `size` bytes as its record says, unless it waits
  // already. Errors: none (a want past the bound is counted as dropped).
  void want(const store::BlobId& id, std::uint64_t size);
  // Fetches those of `blobs` this node lacks too, after any want (unbounded:
  // the store's own list), and logs how many it fetched once they are done.
  // Errors: none (a failure is counted as a want's is).
  void add_backlog(std::vector<std::pair<store::BlobId, std::uint64_t>> blobs);
  PrefetchCounters counters() const;

 private:
  void run();
  // Counts one backlog blob's outcome; logs the backlog's once it drains.
  void note_backlog(bool held, bool ok);

  store::BlobStore& blobs_;
  mutable std::mutex mutex_;  // guards everything below but thread_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<std::pair<store::BlobId, std::uint64_t>> queue_;
  std::set<store::BlobId> queued_;  // what queue_ holds, for want()'s check
  std::deque<std::pair<store::BlobId, std::uint64_t>> backlog_;
  struct BacklogTally {
    std::uint64_t listed = 0, held = 0, fetched = 0, failed = 0;
  } backlog_tally_;
  PrefetchCounters counters_;
  static constexpr std::chrono::seconds kWarnEvery{10};
  std::chrono::steady_clock::time_point last_warning_{};
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace memos::kernel
