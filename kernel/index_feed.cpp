#include "kernel/index_feed.h"

#include <algorithm>
#include <utility>

namespace memos::kernel {

IndexFeed::IndexFeed(Process process, std::size_t max_backlog, std::size_t max_backlog_bytes)
    : process_(std::move(process)),
      max_backlog_(max_backlog),
      max_backlog_bytes_(max_backlog_bytes),
      thread_([this] { run(); }) {
  lags_.reserve(kLagSamples);
}

IndexFeed::~IndexFeed() {
  stop();
}

std::uint64_t IndexFeed::accept() {
  return accepted_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

void IndexFeed::post(std::vector<IndexChange> changes) {
  Entry entry;
  entry.last = accepted();
  for (const IndexChange& c : changes) entry.bytes += c.item.text.size() + sizeof(IndexChange);
  entry.changes = std::move(changes);
  entry.posted = Clock::now();
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty() && !busy_) oldest_posted_ = entry.posted;
    queued_bytes_ += entry.bytes;
    posted_last_ = entry.last;
    queue_.push_back(std::move(entry));
  }
  wake_.notify_one();
}

void IndexFeed::post_barrier(std::function<void()> work) {
  Entry entry;
  entry.barrier = std::move(work);
  entry.posted = Clock::now();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    entry.last = posted_last_;
    if (queue_.empty() && !busy_) oldest_posted_ = entry.posted;
    queue_.push_back(std::move(entry));
  }
  wake_.notify_one();
}

void IndexFeed::when_indexed(std::uint64_t number, std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (indexed_ < number && !stopping_) {
      waiters_.emplace(number, std::move(fn));
      return;
    }
  }
  fn();
}

bool IndexFeed::over_bounds_locked() const {
  const std::uint64_t backlog = accepted() - indexed_;
  return backlog > max_backlog_ || queued_bytes_ > max_backlog_bytes_;
}

void IndexFeed::wait_for_room() {
  std::unique_lock lock(mutex_);
  room_.wait(lock, [&] { return stopping_ || !over_bounds_locked(); });
}

IndexLag IndexFeed::lag() const {
  IndexLag out;
  std::vector<float> lags;
  {
    std::lock_guard lock(mutex_);
    out.indexed = indexed_;
    out.backlog = accepted() - indexed_;
    if (busy_ || !queue_.empty()) {
      out.oldest_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - oldest_posted_).count();
    }
    lags = lags_;
  }
  if (!lags.empty()) {
    auto at = [&](double q) {
      auto k = static_cast<std::size_t>(q * static_cast<double>(lags.size() - 1));
      std::nth_element(lags.begin(), lags.begin() + static_cast<std::ptrdiff_t>(k), lags.end());
      return static_cast<double>(lags[k]);
    };
    out.freshness_p50_ms = at(0.50);
    out.freshness_p99_ms = at(0.99);
  }
  return out;
}

void IndexFeed::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and drained
    std::deque<Entry> taken;
    taken.swap(queue_);
    busy_ = true;
    lock.unlock();
    process_entries(taken);
    lock.lock();
    busy_ = false;
    if (!queue_.empty()) oldest_posted_ = queue_.front().posted;
  }
}

void IndexFeed::process_entries(std::deque<Entry>& entries) {
  std::vector<IndexChange> batch;
  std::vector<Clock::time_point> posted;
  std::uint64_t last = 0;
  std::size_t bytes = 0;
  auto flush = [&] {
    if (!batch.empty()) process_(batch);
    finish(last, bytes, posted);
    batch.clear();
    posted.clear();
    bytes = 0;
  };
  for (Entry& entry : entries) {
    if (entry.barrier) {
      flush();
      entry.barrier();
      continue;
    }
    if (batch.empty()) {
      batch = std::move(entry.changes);
    } else {
      std::move(entry.changes.begin(), entry.changes.end(), std::back_inserter(batch));
    }
    posted.push_back(entry.posted);
    last = std::max(last, entry.last);
    bytes += entry.bytes;
  }
  flush();
}

void IndexFeed::finish(std::uint64_t last, std::size_t bytes,
                       const std::vector<Clock::time_point>& posted) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (Clock::time_point t : posted) {
      const auto ms =
          static_cast<float>(std::chrono::duration<double, std::milli>(now - t).count());
      if (lags_.size() < kLagSamples) {
        lags_.push_back(ms);
      } else {
        lags_[lag_next_] = ms;
      }
      lag_next_ = (lag_next_ + 1) % kLagSamples;
    }
    indexed_ = std::max(indexed_, last);
    queued_bytes_ -= std::min(queued_bytes_, bytes);
    auto end = waiters_.upper_bound(indexed_);
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
  }
  room_.notify_all();
  for (auto& fn : ready) fn();
}

void IndexFeed::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  room_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Everything posted is processed; a waiter left asked for a number that
  // was never posted (its write failed after accept): let it go.
  std::multimap<std::uint64_t, std::function<void()>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(waiters_);
  }
  for (auto& [number, fn] : left) fn();
}

}  // namespace memos::kernel
