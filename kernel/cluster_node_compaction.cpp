// cluster_node_compaction.cpp — ClusterNode's side of log compaction
// (cluster_store_snapshots.h; docs/scale-out.md, "Log compaction"): the
// owner of shard 0 publishes a snapshot of its store, then removes from the
// log the records the snapshots published at least cluster.log_retention_s
// ago cover. A node behind what the log keeps takes the snapshot at its
// start (cluster_store_restore.h), before it joins.
#include <spdlog/spdlog.h>

#include <chrono>

#include "kernel/cluster_node.h"

namespace memos::kernel {
namespace {

// A purge of a long stretch of the log, or a snapshot's etcd round trips,
// may take a while on a loaded cluster; the compaction runs on a worker.
constexpr std::chrono::milliseconds kCompactionCallTimeout{30000};

}  // namespace

void ClusterNode::open_store_snapshots(std::chrono::milliseconds timeout) {
  Status opened;
  store_snapshots_ =
      StoreSnapshots::open(config_, *nats_, *etcd_, store_snapshot_dir_, timeout, &opened);
  if (!store_snapshots_) {
    spdlog::warn("cluster: {}; this node does not compact the log", opened.message);
  }
}

bool ClusterNode::compact_log() {
  // One node does it, as a rule: two at once are safe (etcd's revisions
  // decide), only wasteful.
  if (!store_snapshots_ || !writable(0).ok()) return false;
  const auto now_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t retention_ms = std::uint64_t{config_.log_retention_s} * 1000;
  if (Status s = store_snapshots_->publish(store_, now_ms, retention_ms); !s.ok()) {
    spdlog::warn("cluster {}: {}", config_.name, s.message);
  }
  // Also after a failed publish: the marks of earlier ones may have aged.
  cluster::JetStream log(*nats_, kCompactionCallTimeout);
  std::uint64_t purged = 0;
  if (Status s = store_snapshots_->compact(log, now_ms, retention_ms, &purged); !s.ok()) {
    spdlog::warn("cluster {}: {}", config_.name, s.message);
  } else if (purged > 0) {
    spdlog::info("cluster {}: removed {} record(s) a store snapshot covers from the log",
                 config_.name, purged);
  }
  return true;
}

StoreSnapshotCounters ClusterNode::store_snapshots() const {
  return store_snapshots_ ? store_snapshots_->counters() : StoreSnapshotCounters{};
}

}  // namespace memos::kernel
