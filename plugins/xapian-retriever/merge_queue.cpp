#include "plugins/xapian-retriever/merge_queue.h"

#include <utility>

namespace memos::lexical {

MergeQueue::MergeQueue(Merge merge) : merge_(std::move(merge)), thread_([this] { run(); }) {}

MergeQueue::~MergeQueue() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void MergeQueue::request(std::uint64_t collection) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || !queued_.insert(collection).second) return;
    queue_.push_back(collection);
  }
  wake_.notify_one();
}

void MergeQueue::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::uint64_t collection = queue_.front();
    queue_.pop_front();
    // Taken off before the merge: a request made while it runs (the indexer
    // kept going) queues the next one.
    queued_.erase(collection);
    lock.unlock();
    merge_(collection);
    lock.lock();
  }
}

}  // namespace memos::lexical
