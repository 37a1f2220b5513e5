#include "kernel/blob_prefetch.h"

#include <spdlog/spdlog.h>

namespace memos::kernel {

BlobPrefetch::BlobPrefetch(store::BlobStore& blobs) : blobs_(blobs), thread_([this] { run(); }) {}

BlobPrefetch::~BlobPrefetch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void BlobPrefetch::want(const store::BlobId& id, std::uint64_t size) {
  {
    std::lock_guard lock(mutex_);
    if (queued_.contains(id)) return;
    if (queue_.size() >= kMaxQueued) {
      ++counters_.dropped;
      return;
    }
    queue_.emplace_back(id, size);
    queued_.insert(id);
  }
  wake_.notify_one();
}

void BlobPrefetch::add_backlog(std::vector<std::pair<store::BlobId, std::uint64_t>> blobs) {
  {
    std::lock_guard lock(mutex_);
    backlog_tally_.listed += blobs.size();
    backlog_.insert(backlog_.end(), blobs.begin(), blobs.end());
  }
  wake_.notify_one();
}

PrefetchCounters BlobPrefetch::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void BlobPrefetch::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty() || !backlog_.empty(); });
    if (stopping_) return;
    // The records applied now first: the backlog is older.
    std::pair<store::BlobId, std::uint64_t> next;
    const bool wanted = !queue_.empty();
    if (wanted) {
      next = queue_.front();
      queue_.pop_front();
    } else {
      next = backlog_.front();
      backlog_.pop_front();
    }
    const auto& [id, size] = next;
    // A want stays in queued_ while it is fetched: a second want of it
    // waits for nothing (make_local below finds it held, or the use
    // fetches it).
    const bool held = blobs_.contains(id);
    lock.unlock();
    store::Status s = held ? store::Status{} : blobs_.make_local(id, size);
    lock.lock();
    if (wanted) queued_.erase(id);
    if (!wanted) note_backlog(held, s.ok());
    if (s.ok()) {
      if (!held) ++counters_.fetched;
      continue;
    }
    ++counters_.failed;
    // One line per kWarnEvery at most: a bucket that is down fails every
    // fetch of a busy log.
    const auto now = std::chrono::steady_clock::now();
    if (counters_.failed == 1 || now - last_warning_ >= kWarnEvery) {
      last_warning_ = now;
      spdlog::warn(
          "cluster: prefetching blob {} ({} bytes): {}; it is fetched when first used ({} "
          "prefetch(es) failed so far)",
          store::to_hex(id).substr(0, 12), size, s.message, counters_.failed);
    }
  }
}

void BlobPrefetch::note_backlog(bool held, bool ok) {
  BacklogTally& t = backlog_tally_;
  ++(held ? t.held : ok ? t.fetched : t.failed);
  if (!backlog_.empty()) return;
  if (t.fetched + t.failed > 0) {
    spdlog::info(
        "cluster: prefetched what this node's store referenced and lacked: {} of {} blob(s) "
        "fetched, {} failed (fetched when first used), {} held already",
        t.fetched, t.listed, t.failed, t.held);
  }
  t = BacklogTally{};
}

}  // namespace memos::kernel
