#include "cluster/replica_set.h"

#include <algorithm>
#include <string>

namespace memos::cluster {

ReplicaSet::ReplicaSet(std::vector<LogView*> shards, LogView* stream)
    : shards_(std::move(shards)), stream_(stream) {}

std::optional<LogView::Clock::time_point> ReplicaSet::current_as_of() const {
  std::optional<Clock::time_point> oldest;
  for (const LogView* r : shards_) {
    const std::optional<Clock::time_point> as_of = r->current_as_of();
    if (!as_of) return std::nullopt;
    if (!oldest || *as_of < *oldest) oldest = as_of;
  }
  return oldest;
}

store::Status ReplicaSet::log_end(std::uint64_t* sequence) {
  return (stream_ ? stream_ : shards_.front())->log_end(sequence);
}

store::Status ReplicaSet::wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                                       std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  // Before the replicas: a replica the reader feeds holds what the reader
  // has read by the time it is asked.
  if (stream_) {
    if (store::Status s = stream_->wait_through(sequence, asked_at, timeout); !s.ok()) return s;
  }
  // Without one, each shard's own reader starts at once. (With one, a shard
  // it does not feed — an owner, a replica catching up — is woken by its
  // wait below.)
  if (!stream_) {
    for (LogView* shard : shards_) shard->read_soon();
  }
  for (std::size_t shard = 0; shard < shards_.size(); ++shard) {
    if (store::Status s = shards_[shard]->wait_through(sequence, asked_at, left()); !s.ok()) {
      if (shards_.size() > 1) s.message = "shard " + std::to_string(shard) + ": " + s.message;
      return s;
    }
  }
  return {};
}

}  // namespace memos::cluster
