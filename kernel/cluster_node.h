// cluster_node.h — this daemon's part in a cluster ([cluster] in
// memosd.conf; memos-cluster(7), docs/scale-out.md): over the daemon's
// connections to the log (NATS JetStream) and to the lease service (etcd,
// cluster_engines.h), a replica of
// each of the store's shards (cluster.shards; a tenant's cubes are one
// shard's, store::shard_of). For each shard this node owns, its writer
// appends each commit group of that shard to the log before committing it
// (the change sink hands each group to its shard's replica, every shard's
// group of a commit turn in flight at once); for each shard it
// follows, it applies the owner's records and refuses writes, naming the
// owner.
//
// Blobs (KV states, adapters) are shared through the log's object store
// bucket (cluster/blob_bucket.h): the node gives the bucket to the blob
// store, which shares what it puts and fetches what it lacks, and no record
// that references a blob is appended before the bucket holds the blob.
//
// What the kernel derives from rows learns of applied records here, as the
// owner's handlers learn of their own writes: the indexes are told of the
// cubes that came and went and of the item heads written or purged. Index
// snapshots are shared through a second bucket (cluster_index_sharing.h):
// the owner of a shard shares its cubes' (share_indexes()), and a cube new
// to a node that replays the log from far behind is not indexed record by
// record but, once the node has caught up, from a shared snapshot or in
// batches from the store (IndexSet::defer).
//
// Threading: start() and stop() on the daemon's thread; writable() from any
// thread; the apply hook runs on the writer thread, the role hook on the
// shard's replica's thread.
//
// Errors (Status): start(): unavailable (neither engine answered, or the
// stream is not there yet), conflict (the stream exists with other
// settings, or the cluster was made with other cluster.shards), corrupt,
// io. writable(): unavailable (a follower, or an owner whose lease is in
// doubt), naming the owner when it is known.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/blob_bucket.h"
#include "cluster/etcd_client.h"
#include "cluster/jetstream.h"
#include "cluster/membership.h"
#include "cluster/nats_connection.h"
#include "cluster/read_barrier.h"
#include "cluster/replica_set.h"
#include "cluster/shard_balance.h"
#include "cluster/shard_replica.h"
#include "cluster/stream_reader.h"
#include "cluster/write_forwarding.h"
#include "ipc/schema/memos.capnp.h"
#include "kernel/blob_prefetch.h"
#include "kernel/cluster_engines.h"
#include "kernel/cluster_index_sharing.h"
#include "kernel/cluster_store_snapshots.h"
#include "kernel/config.h"
#include "kernel/index_set.h"
#include "kernel/status.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"

namespace memos::kernel {

// Whether a request of this kind writes the store: those a follower refuses
// (a chat stores its KV state; a scheduler run writes working sets).
bool writes_store(wire::Request::Which operation);

// Whether a write of this kind goes to its shard's owner when it reaches
// another node (ClusterNode::forward_target): the writes answered with one
// reply frame and held by no session of the connection. An import (its
// session), a chat or prefill (which streams, and runs where the model and
// its state are) and an adapter's upload are refused naming the owner.
bool forwardable(wire::Request::Which operation);

// Whether a request of this kind reads what the log replicates: those a
// node serves only once its store holds every write acknowledged before
// the request arrived (ClusterNode::before_read).
bool reads_store(wire::Request::Which operation);

// The cluster as one node sees it now (memctl cluster status).
struct ClusterReport {
  std::string name, node;  // the cluster, and the node that reports
  std::uint32_t replicas = 0, lease_ms = 0;
  struct Shard {
    std::uint32_t shard = 0;
    std::string owner;                // as etcd says now; "" none (a failover)
    std::uint64_t last_sequence = 0;  // of the shard's log, as its leader says
    std::string note;                 // why a figure is missing: an engine's error
  };
  std::vector<Shard> shards;
  std::vector<cluster::NodeReport> nodes;  // the roster, each as it answered
  // No node that answered enforces other tenant policies than the node
  // that reports (NodeReport::policies; a node too old to say is left out).
  bool policies_agree = true;
  struct Bucket {
    std::string name;                    // of the object store bucket of KV states and adapters
    std::uint64_t blobs = 0, bytes = 0;  // cluster::BucketUsage
    std::string note;                    // why the figures are missing
  } bucket;
  // The log's stream: the nats-server that leads its replicas, through
  // which every append goes, and how the others keep up.
  struct Log {
    std::string stream;
    cluster::StreamCluster cluster;
    std::string note;             // why the figures are missing
    std::string previous_leader;  // after step_down_log(): the leader it asked
  } log;
  struct Compaction {
    std::string snapshot_node;  // "" none published yet
    std::uint64_t snapshot_time_ms = 0, snapshot_bytes = 0;
    std::vector<std::uint64_t> floor;  // [shard]
    std::string note;                  // why a figure is missing
  } compaction;
};

class ClusterNode {
 public:
  // Called with true when this node becomes the owner of `shard`, false
  // when it stops being it; on that shard's replica's thread.
  using RoleChange = std::function<void(std::uint32_t shard, bool owner)>;
  // Called once, from a thread that applies records (it must not block),
  // when a shard stops because the log was compacted past what this
  // node's store holds: only a restart, which takes the cluster's newest
  // store snapshot, brings the node back (ShardReplica::BehindObserver).
  using BehindLog = std::function<void(const std::string& fault)>;

  // `engines` (connected), `blobs` and `index_sharing` (null: indexes are
  // not shared) outlive the node; it shares blobs through the node's
  // bucket from start() until the node is destroyed, and stops the indexes'
  // use of `index_sharing` in stop(). Store snapshots pass through
  // `store_snapshot_dir`. `policy_digest` says, from any thread, the
  // digest of the tenant policies this node enforces now
  // (PolicySet::digest).
  ClusterNode(const ClusterConfig& config, ClusterEngines& engines, store::Store& store,
              store::CommitQueue& commits, store::BlobStore& blobs, IndexSet& indexes,
              ClusterIndexSharing* index_sharing, std::string store_snapshot_dir,
              std::function<std::string()> policy_digest);
  ~ClusterNode();  // stop(); the blob store no longer shares
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // Makes sure the log's stream and the blob bucket exist, installs the
  // replicas (one per shard of config.shards, which the daemon agreed with
  // the cluster: agree_on_shards()) as the writer's change sink and starts
  // replicating. Waits up to `timeout` for the engines to answer (a cluster
  // starting together).
  Status start(RoleChange on_role, BehindLog on_behind, std::chrono::milliseconds timeout);
  // Stops replicating; an owner gives its lease back so a follower takes
  // over at once. Before the writer stops.
  void stop();

  // Success while this node owns `shard`, else why not.
  Status writable(std::uint32_t shard) const;
  // Forwarding (cluster/write_forwarding.h). Whether a write of `shard`
  // (the shard of the cube's owner: store::shard_of) goes to another node:
  // true, with `*owner`, when this node cannot write the shard now and
  // another node owns it as far as this one knows. False also for a shard
  // out of range (the request then meets the handler's refusal here).
  bool forward_target(std::uint32_t shard, std::string* owner) const;
  // Sends a write of `shard` to node `owner`, to run as `uid`'s; `done`, on
  // a forwarding thread, gets the owner's reply frame. Stops waiting once
  // the shard has another owner. Errors: WriteForwarder's.
  void forward(const std::string& owner, std::uint32_t shard, std::uint32_t uid, std::string frame,
               cluster::WriteForwarder::Done done);
  // Runs requests other nodes forward here with `handler` (on NATS's
  // reader thread: it only queues them). Before start(): unavailable.
  Status serve_forwarded(cluster::WriteForwarder::Handler handler);
  // Success while this node owns any shard (a request that writes may then
  // be its to write; the change sink refuses a group of another shard),
  // else why not: what writable(0) says with one shard.
  Status writable() const;
  // The shards this node owns now, in order.
  std::vector<std::uint32_t> owned_shards() const;
  // Calls `done` once this node's store holds every write the log
  // acknowledged before now (at once on an owner within its lease, or on a
  // node current within `max_staleness`), from this thread or the
  // barrier's (cluster/read_barrier.h, which says its errors). Before
  // start() and after stop(): unavailable.
  void before_read(std::chrono::milliseconds max_staleness, cluster::ReadBarrier::Done done);
  // Whether a read may be served now, with no wait (counted as such).
  bool current_within(std::chrono::milliseconds max_staleness);
  // What this node's replicas (one per shard, in order) and blob bucket did
  // (memctl metrics), without asking any engine. False before the node
  // joined. `prefetch` stays zero without cluster.prefetch_blobs.
  bool figures(std::vector<cluster::ReplicaState>* replicas, cluster::BucketCounters* bucket,
               PrefetchCounters* prefetch, cluster::ReadBarrierCounters* reads,
               cluster::ForwardingCounters* forwarding) const;
  // Shares the index snapshots of the cubes of the shards this node owns
  // (IndexSet::share, cluster.index_share_min_items); blocks for the
  // exports and uploads: run it on a worker. Returns how many were shared.
  std::size_t share_indexes();
  // What this node shared and took (memctl metrics); zeros without the
  // index bucket.
  IndexSharingCounters index_sharing() const;
  // What the node's stream reader read (memctl metrics); zeros before it
  // joined.
  cluster::StreamReaderCounters log_reads() const;
  // Log compaction (cluster_store_snapshots.h), on the owner of shard 0
  // only (one node at a time, as a rule): publishes a snapshot of the store,
  // then removes from the log what the newest mark older than
  // cluster.log_retention_s covers. Blocks for the copy and the upload: run
  // it on a worker. Returns false when this node did nothing (not shard 0's
  // owner, no snapshot bucket); failures are logged and counted.
  bool compact_log();
  // The newest store snapshot and the log's floor, as etcd says now (for
  // report()); a figure etcd could not give is left out, and the note says
  // why.
  void report_compaction(ClusterReport::Compaction* out);
  // What this node's log compaction did (memctl metrics); zeros without
  // the snapshot bucket.
  StoreSnapshotCounters store_snapshots() const;
  // What this node's sweeps of the blob bucket did (memctl metrics).
  struct BlobSweepCounters {
    std::uint64_t removed = 0;     // no longer referenced, untouched: gone
    std::uint64_t referenced = 0;  // old, but the store references them: kept
    std::uint64_t touched = 0;     // put or used again since listed: kept
    std::uint64_t failures = 0;    // sweeps that stopped on an error
  };
  BlobSweepCounters blob_sweeps() const;
  // Asks etcd, the log and every node on the roster, each within `timeout`
  // (blocks: run it on a worker). An engine that does not answer leaves a
  // note, not an error. Errors: unavailable (not joined yet).
  Status report(std::chrono::milliseconds timeout, ClusterReport* out);
  // Asks the log's leader to give up its role, and waits up to `timeout`
  // for another replica to lead (an operator's remedy for a leader on a
  // slow host or link, which slows every write of the cluster). Appends
  // wait for the election. `*out` gets the log as it stands then, with the
  // leader asked in `previous_leader`. Blocks: run it on a worker. Errors:
  // unavailable (not joined; no leader now; the log's engine refused or did
  // not answer; no other leader within `timeout`), conflict (the log has one
  // replica).
  Status step_down_log(std::chrono::milliseconds timeout, ClusterReport::Log* out);
  // cluster.name and cluster.node_id.
  const std::string& name() const { return config_.name; }
  const std::string& node_id() const { return config_.node_id; }
  // Tenant policies are each node's own files (memos-cluster(7),
  // "Policies"): asks every node on the roster, each within `timeout`, for
  // the digest of those it enforces and compares it with this node's. Logs
  // when the nodes that differ change: a warning naming them, and once
  // they agree again. Blocks: run it on a worker. Returns the nodes that
  // differ; none when the roster cannot be read (logged).
  std::vector<std::string> check_policies(std::chrono::milliseconds timeout);
  // The daemon's timeout for check_policies().
  static constexpr std::chrono::milliseconds kPolicyCheckTimeout{1000};
  // How many nodes differed at the last check_policies() (memctl metrics).
  std::uint64_t policies_differ() const { return policies_differ_.load(); }

 private:
  // The follower's side of each applied record (ShardReplica's apply
  // observer): reads what the record did to cubes and items, and sets
  // `*on_commit` to tell the indexes once it is committed.
  store::Status tell_indexes(store::WriteTxn& txn, const store::ChangeGroup& group,
                             std::function<void()>* on_commit);
  // The writer's change sink: shares the blobs each group references anew
  // (those the blob store's put() did not share already: an archive's
  // adapters), then hands the turn's groups to their shards' replicas, all
  // in flight at once (cluster::sink_groups).
  void sink(std::vector<store::SunkGroup>& groups);
  // Starts prefetch_ with the blobs the store references and lacks.
  void start_prefetch();
  // Opens the store snapshot bucket; a failure is logged (this node then
  // never compacts the log).
  void open_store_snapshots(std::chrono::milliseconds timeout);
  // Removes from the blob bucket the blobs untouched since `cutoff_ms` (now
  // less cluster.blob_grace_s) that this store, holding every record
  // appended before the sweep began, no longer references
  // (cluster::BlobBucket::list_stale). Errors are logged and counted.
  void sweep_blobs(std::uint64_t cutoff_ms);
  // Removes from the index and store snapshots' buckets the files older
  // than `cutoff_ms` that no key names. Errors are logged.
  void sweep_snapshot_buckets(std::uint64_t cutoff_ms);
  // Ends the indexes' deferring (IndexSet::start_deferring, from start())
  // once the store holds the log as far as it reached when asked, asking
  // again until it does.
  void await_replay();
  // Opens the blob bucket, waiting up to `deadline` for JetStream.
  Status open_bucket(std::chrono::steady_clock::time_point deadline);

  // Makes and starts one replica per shard, waiting up to `deadline` for
  // the stream. Errors: ShardReplica::start()'s.
  Status start_replicas(RoleChange on_role, BehindLog on_behind,
                        std::chrono::steady_clock::time_point deadline);

  const ClusterConfig& config_;
  store::Store& store_;
  store::CommitQueue& commits_;
  store::BlobStore& blobs_;
  IndexSet& indexes_;
  cluster::NatsConnection* const nats_;  // the engines': borrowed
  std::unique_ptr<cluster::BlobBucket> bucket_;
  cluster::EtcdClient* const etcd_;
  std::vector<std::unique_ptr<cluster::ShardReplica>> replicas_;  // [shard]
  // Feeds every replica; after them, so it goes first.
  std::unique_ptr<cluster::StreamReader> stream_reader_;
  // Decides when each replica claims and gives back (cluster.shards > 1);
  // after them, so it goes first.
  std::unique_ptr<cluster::ShardBalancer> balancer_;
  std::unique_ptr<cluster::ReplicaSet> log_view_;    // every replica, as the barrier's one log
  std::unique_ptr<cluster::Membership> membership_;  // after the replicas: it reports them
  std::unique_ptr<cluster::ReadBarrier> reads_;      // after the replicas: it asks them
  std::unique_ptr<cluster::WriteForwarder> forwarder_;
  // cluster.prefetch_blobs: fed once each applied record commits; the
  // destructor stops it before the bucket goes.
  std::unique_ptr<BlobPrefetch> prefetch_;
  const std::string store_snapshot_dir_;
  std::unique_ptr<StoreSnapshots> store_snapshots_;  // set by start()
  std::atomic<std::uint64_t> swept_{0}, sweep_referenced_{0}, sweep_touched_{0}, sweep_failures_{0};
  // Where the next sweep of the blob bucket goes on listing
  // (BlobBucket::list_stale); the compaction's worker alone uses it.
  std::uint64_t sweep_cursor_ = 1;
  // Set in the indexes by the daemon, before they open; stop() clears it
  // there.
  ClusterIndexSharing* const index_sharing_;
  // Watches for the replay's end (await_replay()); stop() wakes and joins it.
  std::thread replay_watch_;
  std::mutex replay_mutex_;  // guards stopping_
  std::condition_variable replay_wake_;
  bool stopping_ = false;
  // This node's line of the roster, from its replicas (set).
  cluster::NodeReport self_report() const;
  // Reads which cubes the store holds into open_cubes_: their collections
  // are open (open_all() at start; the handlers while this node owned the
  // store). Errors: the store's.
  Status note_open_cubes();

  const std::function<std::string()> policy_digest_;
  // The nodes of `roster` that answered with another policy digest than
  // `own`; a node too old to send one is not counted either way.
  static std::vector<std::string> nodes_with_other_policies(
      const std::string& own, const std::vector<cluster::NodeReport>& roster);
  std::atomic<std::uint64_t> policies_differ_{0};
  std::mutex policy_check_mutex_;               // one check at a time; guards what follows
  std::vector<std::string> policies_differed_;  // at the last check, as logged

  std::mutex cubes_mutex_;  // guards open_cubes_
  // Cubes whose collections are open here: changed after each applied
  // record commits (writer thread), read again when ownership is lost.
  std::set<store::CubeId> open_cubes_;
};

}  // namespace memos::kernel
