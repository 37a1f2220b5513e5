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
// The bucket may not be reachable when the node starts (JetStream electing
// its leaders, or not answering for longer than memosd waits at start): it
// is then opened on a later use, at most once every five timeouts, and
// until then every call that needs it fails with `unavailable` (a node
// rebuilds its indexes from the store meanwhile) instead of sharing staying
// off until a restart.
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
#include <mutex>
#include <string>

#include "cluster/blob_bucket.h"
#include "cluster/etcd_client.h"
#include "kernel/bucket_files.h"
#include "kernel/index_sharing.h"
#include "memcube/blob_store.h"

namespace memos::kernel {

class ClusterIndexSharing final : public SharedIndexes {
 public:
  // Opens the staging blob store in `dir` and makes sure the cluster's index
  // bucket exists (`replicas` copies). A bucket JetStream does not answer
  // for within `timeout` is opened later (bucket_open()); any other failure
  // is null, with `*status`. Errors: as BlobBucket::open and
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

  // Opens the bucket if it is not open, unless another thread is trying.
  // Errors: unavailable (JetStream did not answer, or another thread is
  // trying), and BucketFiles::open's.
  Status open_bucket();
  bool bucket_open() const { return opened_.load(std::memory_order_acquire) != nullptr; }

  // Removes from the bucket the files uploaded before `before_ms` that no
  // key names (a publish cut short; two owners publishing during a
  // handover); `*removed` counts them. Errors: unavailable, internal.
  Status remove_unnamed(std::uint64_t before_ms, std::uint64_t* removed);

  // The bucket's name (memctl cluster status).
  const std::string& bucket_name() const { return settings_.name; }

 private:
  using Clock = std::chrono::steady_clock;

  ClusterIndexSharing(std::string cluster, cluster::BucketSettings settings,
                      cluster::NatsConnection& nats, cluster::EtcdClient& etcd, std::string dir,
                      std::chrono::milliseconds timeout);
  std::string key(store::CubeId cube, const std::string& retriever) const;
  // The bucket's files, opened now if they were not and the last try is
  // five timeouts old; null, with `*status`, while they cannot be.
  BucketFiles* files(Status* status);
  // open_bucket(); with `after_pause`, not within five timeouts of a failed
  // try (that failure again).
  Status try_open(bool after_pause);

  const std::string cluster_;
  const cluster::BucketSettings settings_;
  cluster::NatsConnection& nats_;
  cluster::EtcdClient& etcd_;
  const std::string dir_;
  const std::chrono::milliseconds timeout_;
  // Opening: one thread at a time (try_lock: the others fail at once).
  std::mutex open_mutex_;
  std::unique_ptr<BucketFiles> files_;  // set once, under open_mutex_
  Clock::time_point next_try_{};        // under open_mutex_
  Status last_failure_;                 // under open_mutex_
  // files_.get() once set: read without the lock (it never changes after).
  std::atomic<BucketFiles*> opened_{nullptr};
  std::atomic<std::uint64_t> published_{0}, publish_failures_{0};
  std::atomic<std::uint64_t> imported_{0}, refused_{0}, fetch_failures_{0};
};

}  // namespace memos::kernel
