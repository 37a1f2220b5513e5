// merge_queue.h — the xapian-retriever's background merges: one thread for
// the whole plugin, which calls `merge(collection)` for each collection that
// asked (LexicalCollection::MergeRequest), one at a time and in the order
// asked. One thread because merges are disk work that gains nothing from
// running side by side on a small machine, and the indexer must not wait
// for them.
//
// Errors: request() never throws but std::bad_alloc; a merge's failure is the
// callback's to report (it runs on the queue's thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

namespace memos::lexical {

class MergeQueue {
 public:
  using Merge = std::function<void(std::uint64_t collection)>;
  // Starts the thread. `merge` must not throw.
  explicit MergeQueue(Merge merge);
  // Lets the merge in progress finish, drops the rest and joins the thread.
  ~MergeQueue();
  MergeQueue(const MergeQueue&) = delete;
  MergeQueue& operator=(const MergeQueue&) = delete;

  // Queues a merge of `collection`, unless one is already waiting.
  void request(std::uint64_t collection);

 private:
  void run();

  const Merge merge_;
  std::mutex mutex_;  // guards the three below
  std::condition_variable wake_;
  std::deque<std::uint64_t> queue_;
  std::set<std::uint64_t> queued_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace memos::lexical
