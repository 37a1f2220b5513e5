// cluster_store_snapshots.h — log compaction (docs/scale-out.md, "Log
// compaction"): the cluster's newest store snapshot, and the records of the
// log it lets the stream drop.
//
// A store snapshot is a compacted copy of one node's LMDB
// (Store::copy_to), uploaded as one file to the snapshot bucket
// (MEMOS_<cluster>_SNAPSHOTS, a JetStream object store like the log's blob
// bucket, cluster/blob_bucket.h). etcd key /memos/<cluster>/store_snapshot
// names the newest with the log positions, per shard, that the store held
// when the copy began (the copy holds at least those records), and the
// marks: the positions and time of each snapshot published within the log's
// retention, and of the newest one before it. A publish replaces the key
// only if it read the key's revision and covers at least what the key's
// snapshot covers on every shard, so a node that lags never replaces a
// newer snapshot; it then removes the file it replaced from the bucket.
//
// compact() removes from the log, shard by shard, the records at or below
// the newest mark older than the retention, and never a subject's last
// record (the server fences the shard's next append on it). Before it
// removes any, it raises the floor (/memos/<cluster>/log_floor) to those
// positions: a store holding less than the floor on some shard may lack a
// removed record, so it cannot follow the log from where it stands and
// takes the newest snapshot instead (cluster_store_restore.h). Every floor
// is at or below the newest snapshot's positions, since marks are never
// ahead of the snapshot published last.
//
// What etcd and the bucket hold is not taken on trust: a key that is not
// such a description is `internal`, with why; a fetched file must match its
// digest and size, and the node that takes it opens it as a store before
// it replaces its own.
//
// Thread-safety: every method may be called from any thread; publish() and
// compact() are meant for one caller at a time (the owner of shard 0's
// periodic job), and two nodes doing it at once is safe (the key's
// revision decides).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/blob_bucket.h"
#include "cluster/etcd_client.h"
#include "cluster/jetstream.h"
#include "kernel/bucket_files.h"
#include "kernel/config.h"
#include "kernel/status.h"
#include "memcube/blob_store.h"
#include "memcube/store.h"

namespace memos::kernel {

// The positions (stream sequences) a store held on each shard at a time.
struct LogMark {
  std::uint64_t time_ms = 0;             // ms since the epoch, by the publishing node's clock
  std::vector<std::uint64_t> positions;  // [shard]
};

// The newest store snapshot, as etcd describes it.
struct StoreSnapshotInfo {
  std::string blob;  // its content key in the bucket, 64 hex digits
  std::uint64_t bytes = 0;
  std::string node;            // that published it
  LogMark covers;              // what the store held when the copy began
  std::vector<LogMark> marks;  // oldest first; the last is `covers`
};

// What this node did (memctl metrics).
struct StoreSnapshotCounters {
  std::uint64_t published = 0, publish_failures = 0;
  std::uint64_t compactions = 0, compaction_failures = 0;
  std::uint64_t purged_records = 0;
};

// The log positions `store` holds, one per shard. Errors: the store's.
store::Status read_log_positions(const store::Store& store, std::vector<std::uint64_t>* out);

// Per shard of `cluster`'s `shards`, the position below which the log's
// records may be gone; all zeros before the first compaction. `*revision`,
// when given, gets the key's mod revision (0: none yet). Errors: internal
// (the key is not such a list), unavailable.
Status read_log_floor(cluster::EtcdClient& etcd, const std::string& cluster, std::uint32_t shards,
                      std::vector<std::uint64_t>* out, std::int64_t* revision = nullptr);

class StoreSnapshots {
 public:
  // Makes sure the snapshot bucket exists (cluster.replicas copies) and
  // opens the staging blob store in `dir` (emptied first: what a crash left
  // there is stale). Errors: as BlobBucket::open and BlobStore::open.
  static std::unique_ptr<StoreSnapshots> open(const ClusterConfig& config,
                                              cluster::NatsConnection& nats,
                                              cluster::EtcdClient& etcd, const std::string& dir,
                                              std::chrono::milliseconds timeout, Status* status);

  // The newest snapshot, and the key's mod revision when `revision` is
  // given. Errors: not_found (none published), internal (the key is not such
  // a description, or is for another shard count), unavailable.
  Status newest(StoreSnapshotInfo* out, std::int64_t* revision = nullptr);
  // Copies `store` and makes it the newest snapshot at `now_ms`, keeping the
  // marks compaction needs with `retention_ms`. Blocks for the copy and the
  // upload: run it on a worker. Errors: conflict (the newest snapshot or the
  // log's floor is past what this store holds on some shard, or another
  // node published meanwhile), unavailable, io, storage_full.
  Status publish(const store::Store& store, std::uint64_t now_ms, std::uint64_t retention_ms);
  // Removes from `log` the records the newest mark at least `retention_ms`
  // old covers (none: nothing to do), raising the floor first; `*purged`
  // gets how many went. Errors: conflict (the floor changed meanwhile: try
  // at the next round), internal, unavailable.
  Status compact(cluster::JetStream& log, std::uint64_t now_ms, std::uint64_t retention_ms,
                 std::uint64_t* purged);
  // Fetches `snapshot`'s file to `path`, checked against its digest and
  // size. Errors: not_found (replaced meanwhile: ask newest() again),
  // corrupt, unavailable, io, storage_full.
  Status fetch(const StoreSnapshotInfo& snapshot, const std::string& path);

  // Removes from the bucket the files uploaded before `before_ms` that the
  // key does not name (a publish cut short by a crash); `*removed` counts
  // them. Errors: unavailable.
  Status remove_unnamed(std::uint64_t before_ms, std::uint64_t* removed);

  StoreSnapshotCounters counters() const;
  const std::string& bucket_name() const { return files_->bucket().name(); }

 private:
  StoreSnapshots(const ClusterConfig& config, cluster::EtcdClient& etcd)
      : cluster_(config.name), node_(config.node_id), shards_(config.shards), etcd_(etcd) {}

  const std::string cluster_, node_;
  const std::uint32_t shards_;
  cluster::EtcdClient& etcd_;
  std::unique_ptr<BucketFiles> files_;
  std::string copy_dir_;  // where Store::copy_to writes
  std::atomic<std::uint64_t> published_{0}, publish_failures_{0};
  std::atomic<std::uint64_t> compactions_{0}, compaction_failures_{0}, purged_{0};
};

}  // namespace memos::kernel
