// cluster_index_sharing.h — SharedIndexes (index_sharing.h) on the
// cluster's engines: each snapshot file is a blob of the index bucket
// (MEMOS_<cluster>_INDEXES, a JetStream object store like the log's blob
// bucket, cluster/blob_bucket.h), and etcd names each cube's newest one per
// retriever (/memos/<cluster>/indexes/<cube>/<retriever>, cluster/names.h)
// with what the node that shared it says of it, as JSON. A publish uploads
// the file, then points the key at it, then removes the file it replaced
// from the bucket, so the bucket holds about one snapshot per cube and
// retriever however often they are shared.
//
// Files pass through a blob store of their own (<data>/index/shared/):
// the upload reads it from there, and a fetch lands there, checked against
// its digest, before it is moved to the path asked for.
//
// What etcd and the bucket hold is not taken on trust: a key that is not
// such a description is `internal`, with why; a fetched file must match
// its digest and size; the retriever that imports it checks it again.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "cluster/blob_bucket.h"
#include "cluster/etcd_client.h"
#include "kernel/bucket_files.h"
#include "kernel/index_sharing.h"
#include "memcube/blob_store.h"

namespace memos::kernel {

class ClusterIndexSharing final : public SharedIndexes {
 public:
  // Makes sure the cluster's index bucket exists (`replicas` copies) and
  // opens the staging blob store in `dir`. Errors: as BlobBucket::open and
  // BlobStore::open, as a kernel Status.
  static std::unique_ptr<ClusterIndexSharing> open(const std::string& cluster, int replicas,
                                                   cluster::NatsConnection& nats,
                                                   cluster::EtcdClient& etcd,
                                                   const std::string& dir,
                                                   std::chrono::milliseconds timeout,
                                                   Status* status);

  Status find(store::CubeId cube, const std::string& retriever, SharedSnapshot* out) override;
  Status fetch(const SharedSnapshot& snapshot, const std::string& path) override;
  Status publish(SharedSnapshot snapshot, const std::string& path) override;
  void count_import(bool taken) override;
  IndexSharingCounters counters() const override;

  // Removes from the bucket the files uploaded before `before_ms` that no
  // key names (a publish cut short; two owners publishing during a
  // handover); `*removed` counts them. Errors: unavailable, internal.
  Status remove_unnamed(std::uint64_t before_ms, std::uint64_t* removed);

  // The bucket's name (memctl cluster status).
  const std::string& bucket_name() const { return files_->bucket().name(); }

 private:
  ClusterIndexSharing(std::string cluster, cluster::EtcdClient& etcd)
      : cluster_(cluster), etcd_(etcd) {}
  std::string key(store::CubeId cube, const std::string& retriever) const;

  const std::string cluster_;
  cluster::EtcdClient& etcd_;
  std::unique_ptr<BucketFiles> files_;
  std::atomic<std::uint64_t> published_{0}, publish_failures_{0};
  std::atomic<std::uint64_t> imported_{0}, refused_{0}, fetch_failures_{0};
};

}  // namespace memos::kernel
