// cluster_node_compaction.cpp — ClusterNode's side of log compaction
// (cluster_store_snapshots.h; docs/scale-out.md, "Log compaction"): the
// owner of shard 0 publishes a snapshot of its store, then removes from the
// log the records the snapshots published at least cluster.log_retention_s
// ago cover. A node behind what the log keeps takes the snapshot at its
// start (cluster_store_restore.h), before it joins.
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <vector>

#include "kernel/cluster_node.h"

namespace memos::kernel {
namespace {

// A purge of a long stretch of the log, or a snapshot's etcd round trips,
// may take a while on a loaded cluster; the compaction runs on a worker.
constexpr std::chrono::milliseconds kCompactionCallTimeout{30000};
// Blobs one sweep lists at most (each description is a read of the
// bucket's stream); the rest wait for the next.
constexpr std::size_t kMaxSweptBlobs = 100000;

}  // namespace

void ClusterNode::open_store_snapshots(std::chrono::milliseconds timeout) {
  Status opened;
  store_snapshots_ =
      StoreSnapshots::open(config_, *nats_, *etcd_, store_snapshot_dir_, timeout, &opened);
  if (!store_snapshots_) {
    spdlog::warn("cluster: {}; this node does not compact the log", opened.message);
  }
}

void ClusterNode::report_compaction(ClusterReport::Compaction* out) {
  if (!store_snapshots_) {
    out->note = "this node cannot read the store snapshots' bucket";
    return;
  }
  StoreSnapshotInfo newest;
  if (Status s = store_snapshots_->newest(&newest); s.ok()) {
    out->snapshot_node = newest.node;
    out->snapshot_time_ms = newest.covers.time_ms;
    out->snapshot_bytes = newest.bytes;
  } else if (s.code != Code::not_found) {
    out->note = "store snapshot: " + s.message;
  }
  if (Status s = read_log_floor(*etcd_, config_.name, config_.shards, &out->floor); !s.ok()) {
    out->floor.clear();
    out->note += (out->note.empty() ? "" : "; ") + ("log floor: " + s.message);
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
  // What no record or key names and no node used within the grace goes
  // (0: the buckets keep everything).
  const std::uint64_t grace_ms = std::uint64_t{config_.blob_grace_s} * 1000;
  if (grace_ms != 0 && now_ms > grace_ms) {
    sweep_blobs(now_ms - grace_ms);
    sweep_snapshot_buckets(now_ms - grace_ms);
  }
  return true;
}

void ClusterNode::sweep_snapshot_buckets(std::uint64_t cutoff_ms) {
  std::uint64_t indexes = 0, stores = 0;
  if (index_sharing_) {
    if (Status s = index_sharing_->remove_unnamed(cutoff_ms, &indexes); !s.ok())
      spdlog::warn("cluster {}: sweeping the index snapshots' bucket: {}", config_.name, s.message);
  }
  if (Status s = store_snapshots_->remove_unnamed(cutoff_ms, &stores); !s.ok())
    spdlog::warn("cluster {}: sweeping the store snapshots' bucket: {}", config_.name, s.message);
  if (indexes + stores > 0) {
    spdlog::info("cluster {}: removed {} index and {} store snapshot file(s) no key names",
                 config_.name, indexes, stores);
  }
}

void ClusterNode::sweep_blobs(std::uint64_t cutoff_ms) {
  if (!bucket_) return;
  auto failed = [this](const store::Status& s) {
    sweep_failures_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("cluster {}: sweeping blob bucket {}: {}", config_.name, bucket_->name(),
                 s.message);
  };
  std::vector<cluster::StaleBlob> stale;
  if (store::Status s = bucket_->list_stale(cutoff_ms, kMaxSweptBlobs, &sweep_cursor_, &stale);
      !s.ok())
    return failed(s);
  if (stale.empty()) return;
  // Every record appended before now, applied here: one that references a
  // listed blob raises its count in this store. A record appended after
  // comes from a node that touched the blob first (or uploaded it again),
  // which fails its removal's fence.
  const auto asked_at = std::chrono::steady_clock::now();
  std::uint64_t end = 0;
  store::Status s = log_view_->log_end(&end);
  if (s.ok()) s = log_view_->wait_through(end, asked_at, kCompactionCallTimeout);
  std::optional<store::ReadTxn> txn;
  if (s.ok()) s = store_.begin_read(&txn);
  if (!s.ok()) return failed(s);
  std::uint64_t removed = 0;
  for (const cluster::StaleBlob& blob : stale) {
    std::uint64_t refs = 0;
    if (s = txn->blob_refs(blob.id, &refs); !s.ok()) return failed(s);
    if (refs > 0) {
      sweep_referenced_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    bool gone = false;
    if (s = bucket_->remove_if_unchanged(blob, &gone); !s.ok()) return failed(s);
    (gone ? swept_ : sweep_touched_).fetch_add(1, std::memory_order_relaxed);
    removed += gone;
  }
  if (removed > 0) {
    spdlog::info("cluster {}: removed {} blob(s) no record references from bucket {}", config_.name,
                 removed, bucket_->name());
  }
}

ClusterNode::BlobSweepCounters ClusterNode::blob_sweeps() const {
  return {.removed = swept_.load(std::memory_order_relaxed),
          .referenced = sweep_referenced_.load(std::memory_order_relaxed),
          .touched = sweep_touched_.load(std::memory_order_relaxed),
          .failures = sweep_failures_.load(std::memory_order_relaxed)};
}

StoreSnapshotCounters ClusterNode::store_snapshots() const {
  return store_snapshots_ ? store_snapshots_->counters() : StoreSnapshotCounters{};
}

}  // namespace memos::kernel
