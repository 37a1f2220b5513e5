// replica_set.h — every shard a node replicates, as one log to the read
// barrier (read_barrier.h). A read may touch any shard (a listing, a
// shared cube), so a node answers it once it holds every shard through
// the log's end: the shards share one stream, whose end is asked once, and
// each replica waits until it has read its own subject that far.
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
  // order.
  explicit ReplicaSet(std::vector<LogView*> shards);

  // The oldest of the shards' (nullopt while any is unknown): an owner of
  // every shard within its leases is current now.
  std::optional<Clock::time_point> current_as_of() const override;
  // Where the shards' one stream ends.
  store::Status log_end(std::uint64_t* sequence) override;
  // Every shard's reader woken at once (read_soon), then each shard waited
  // for in turn, all within `timeout`: each reads on its own thread, so the
  // wait is the slowest one's, not their sum.
  store::Status wait_through(std::uint64_t sequence, Clock::time_point asked_at,
                             std::chrono::milliseconds timeout) override;

 private:
  const std::vector<LogView*> shards_;
};

}  // namespace memos::cluster
