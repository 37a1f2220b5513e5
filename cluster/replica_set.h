// replica_set.h — every shard a node replicates, as one log to the read
// barrier (read_barrier.h). A read may touch any shard (a listing, a
// shared cube), so a node answers it once it holds every shard through
// the log's end: the shards share one stream, whose end is asked once. With
// the node's stream reader (stream_reader.h), the set waits until the
// reader has read that far — one reader for every shard — and then asks each
// replica, which holds at once while the reader feeds it and otherwise
// waits until it has read its own subject that far.
//
// Threading: as LogView's (any thread); the replicas outlive the set.
//
// Errors: as LogView's; wait_through() says which shard did not catch up.
#pragma once

#include <optional>
#include <vector>

#include "cluster/read_barrier.h"

namespace memos::cluster {

class ReplicaSet : public LogView {
 public:
  // `shards`: at least one, every shard's replica (ShardReplica), in shard
  // order. `stream`: the reader that feeds them, or null (each reads its
  // own subject).
  explicit ReplicaSet(std::vector<LogView*> shards, LogView* stream = nullptr);

  // The oldest of the shards' (nullopt while any is unknown): an owner of
  // every shard within its leases is current now.
  std::optional<Clock::time_point> current_as_of() const override;
  // Where the shards' one stream ends.
  store::Status log_end(std::uint64_t* sequence) override;
  // The stream reader waited for first; then every shard's reader woken at
  // once (read_soon), then each shard waited for in turn, all within
  // `timeout`: each reads on its own thread, so the wait is the slowest
  // one's, not their sum (and none at all for the shards the reader feeds).
  store::Status wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                             std::chrono::milliseconds timeout) override;

 private:
  const std::vector<LogView*> shards_;
  LogView* const stream_;
};

}  // namespace memos::cluster
