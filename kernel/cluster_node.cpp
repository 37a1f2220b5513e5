#include "kernel/cluster_node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "cluster/names.h"
#include "kernel/cluster_engines.h"
#include "memcube/change_summary.h"

namespace memos::kernel {
namespace {

// Writes forwarded to their owners and waited on at once; more wait their
// turn (each tenant's in flight is bounded where its requests arrive).
constexpr unsigned kForwardingThreads = 8;

// The blobs whose reference count `changes` raise, with the sizes they give.
std::vector<std::pair<store::BlobId, std::uint64_t>> raised_blobs(
    const std::vector<store::Change>& changes) {
  std::vector<std::pair<store::BlobId, std::uint64_t>> out;
  for (const store::Change& c : changes) {
    if (c.kind != store::ChangeKind::blob_refs) continue;
    std::int64_t delta = 0;
    std::uint64_t size = 0;
    if (!store::decode_blob_refs(c.value, &delta, &size) || delta <= 0 || c.key.size() != 32)
      continue;
    store::BlobId id;
    std::copy(c.key.begin(), c.key.end(), id.begin());
    out.emplace_back(id, size);
  }
  return out;
}

}  // namespace

bool reads_store(wire::Request::Which operation) {
  using R = wire::Request;
  switch (operation) {
    case R::CUBE_LIST:
    case R::CUBE_SHOW:
    case R::GET:
    case R::HISTORY:
    case R::SEARCH:
    case R::DIFF:
    case R::SNAPSHOT_LIST:
    case R::SNAPSHOT_DIFF:
    case R::EXPORT_CHUNK:
    case R::KV_LIST:
    case R::TENANT_USAGE:
    case R::SCHED_STATUS:
    case R::SCHED_LOG:
    case R::EXPLAIN:
    case R::PARAM_LIST:
    case R::PARAM_SHOW:
    case R::PARAM_EXPORT:
      return true;
    default:
      return false;
  }
}

bool writes_store(wire::Request::Which operation) {
  using R = wire::Request;
  switch (operation) {
    case R::CUBE_CREATE:
    case R::CUBE_REMOVE:
    case R::CUBE_SHARE:
    case R::CUBE_UNSHARE:
    case R::ADD:
    case R::UPDATE:
    case R::REMOVE:
    case R::SET_STATE:
    case R::ROLLBACK:
    case R::SNAPSHOT_CREATE:
    case R::IMPORT_BEGIN:
    case R::IMPORT_CHUNK:
    case R::IMPORT_FINISH:
    case R::CHAT:
    case R::KV_PREFILL:
    case R::KV_REMOVE:
    case R::PARAM_ADD:
    case R::PARAM_REMOVE:
    case R::PARAM_CVEC:
    case R::PARAM_DISTILL:
    case R::SCHED_RUN:
      return true;
    default:
      return false;
  }
}

bool forwardable(wire::Request::Which operation) {
  using R = wire::Request;
  switch (operation) {
    case R::IMPORT_BEGIN:  // a session on the connection
    case R::IMPORT_CHUNK:
    case R::IMPORT_FINISH:
    case R::CHAT:        // streams; runs where the model and the state are
    case R::KV_PREFILL:  // the same
    case R::PARAM_ADD:   // an upload's session
    case R::PARAM_CVEC:  // a model's work
    case R::PARAM_DISTILL:
    case R::SCHED_RUN:  // the owner's own pass
      return false;
    default:
      return writes_store(operation);
  }
}

ClusterNode::ClusterNode(const ClusterConfig& config, ClusterEngines& engines, store::Store& store,
                         store::CommitQueue& commits, store::BlobStore& blobs, IndexSet& indexes,
                         ClusterIndexSharing* index_sharing, std::string store_snapshot_dir,
                         std::function<std::string()> policy_digest)
    : config_(config),
      store_(store),
      commits_(commits),
      blobs_(blobs),
      indexes_(indexes),
      nats_(engines.nats.get()),
      etcd_(engines.etcd.get()),
      store_snapshot_dir_(std::move(store_snapshot_dir)),
      index_sharing_(index_sharing),
      policy_digest_(std::move(policy_digest)) {}

ClusterNode::~ClusterNode() {
  stop();
  prefetch_.reset();           // its fetches go through the bucket
  blobs_.share_with(nullptr);  // the bucket goes with this node
}

Status ClusterNode::open_bucket(std::chrono::steady_clock::time_point deadline) {
  cluster::BucketSettings settings;
  settings.name = cluster::blob_bucket_name(config_.name);
  settings.replicas = static_cast<int>(config_.replicas);
  // A blob this node took as shared is asked again well before a sweep
  // could remove it (docs/scale-out.md, "Blobs shared").
  if (config_.blob_grace_s > 0)
    settings.known_for = std::chrono::milliseconds(std::uint64_t{config_.blob_grace_s} * 1000 / 6);
  const auto timeout =
      std::max(std::chrono::milliseconds(config_.lease_ms), std::chrono::milliseconds(2000));
  store::Status s = retry_while_unavailable(deadline, [&] {
    store::Status opened;
    bucket_ = cluster::BlobBucket::open(settings, *nats_, timeout, &opened);
    return opened;
  });
  if (!bucket_) return Status::from(s).prefixed("cluster " + config_.name + "'s blob bucket");
  blobs_.share_with(bucket_.get());
  return {};
}

void ClusterNode::sink(std::vector<store::SunkGroup>& groups) {
  for (store::SunkGroup& group : groups) {
    for (const auto& [id, size] : raised_blobs(group.changes->changes())) {
      // Usually known shared already (put() did it, off the writer thread).
      if (store::Status s = blobs_.share(id); !s.ok()) {
        group.outcome = {
            s.code == store::Errc::not_found ? store::Errc::io : s.code,
            "sharing blob " + store::to_hex(id).substr(0, 12) + " before its record: " + s.message};
        break;
      }
    }
  }
  std::vector<cluster::ShardReplica*> replicas;
  for (auto& r : replicas_) replicas.push_back(r.get());
  cluster::sink_groups(replicas, groups);
}

Status ClusterNode::start_replicas(RoleChange on_role, BehindLog on_behind,
                                   std::chrono::steady_clock::time_point deadline) {
  auto shared_on_role = std::make_shared<RoleChange>(std::move(on_role));
  // Once for the node, whichever shards stop so.
  auto told_behind = std::make_shared<std::atomic<bool>>(false);
  auto shared_on_behind = std::make_shared<BehindLog>(std::move(on_behind));
  cluster::ReplicaSettings settings;
  settings.cluster = config_.name;
  settings.node = config_.node_id;
  settings.replicas = static_cast<int>(config_.replicas);
  settings.lease = std::chrono::milliseconds(config_.lease_ms);
  std::vector<cluster::ShardReplica*> shards;
  for (std::uint32_t shard = 0; shard < config_.shards; ++shard) {
    settings.shard = shard;
    auto replica =
        std::make_unique<cluster::ShardReplica>(settings, store_, commits_, *nats_, *etcd_);
    replica->set_apply_observer(
        [this](store::WriteTxn& txn, const store::ChangeGroup& g,
               std::function<void()>* on_commit) { return tell_indexes(txn, g, on_commit); });
    replica->set_role_observer([this, shard, shared_on_role](bool owner) {
      // While it owned the shard, this node's own handlers opened and
      // dropped collections: it follows from what its store holds now (the
      // role changes on the replica's thread, between records).
      if (!owner) {
        if (Status st = note_open_cubes(); !st.ok())
          spdlog::error("cluster: listing the cubes: {}", st.message);
      }
      if (*shared_on_role) (*shared_on_role)(shard, owner);
    });
    replica->set_behind_observer([told_behind, shared_on_behind](const std::string& fault) {
      if (*shared_on_behind && !told_behind->exchange(true)) (*shared_on_behind)(fault);
    });
    shards.push_back(replica.get());
    replicas_.push_back(std::move(replica));
  }
  // One reader of the whole log feeds every replica (stream_reader.h).
  stream_reader_ = std::make_unique<cluster::StreamReader>(
      config_.name, shards, *nats_, settings.poll,
      std::max(std::chrono::milliseconds(1000), settings.lease / 2));
  for (cluster::ShardReplica* r : shards) r->read_through(stream_reader_.get());
  // Owners spread over the nodes (shard_balance.h): with one shard there is
  // nothing to spread, and the shard is claimed at once as before.
  if (config_.shards > 1) {
    cluster::BalanceSettings balance;
    balance.cluster = config_.name;
    balance.node = config_.node_id;
    balance.lease = settings.lease;
    balancer_ = std::make_unique<cluster::ShardBalancer>(balance, shards, *etcd_);
    for (cluster::ShardReplica* r : shards) {
      r->set_claim_gate([this, shard = r->shard()](std::chrono::steady_clock::duration free_for) {
        return balancer_->may_claim(shard, free_for);
      });
    }
  }
  auto fail = [&](const store::Status& s, const std::string& what) {
    balancer_.reset();
    stream_reader_->stop();  // before the replicas, whose records it hands them
    for (auto& started : replicas_) started->stop(true);
    replicas_.clear();
    stream_reader_.reset();
    Status failed = Status::from(s);
    failed.prefixed("joining cluster " + config_.name + what);
    return failed;
  };
  for (std::uint32_t shard = 0; shard < config_.shards; ++shard) {
    // The stream may not be there yet while JetStream elects its first
    // leader (every node of a new cluster starting at once).
    if (store::Status s =
            retry_while_unavailable(deadline, [&] { return replicas_[shard]->start(); });
        !s.ok()) {
      return fail(s, config_.shards > 1 ? " (shard " + std::to_string(shard) + ")" : "");
    }
  }
  if (store::Status s = retry_while_unavailable(deadline, [&] { return stream_reader_->start(); });
      !s.ok()) {
    return fail(s, " (reading the log)");
  }
  if (balancer_) balancer_->start();
  return {};
}

Status ClusterNode::start(RoleChange on_role, BehindLog on_behind,
                          std::chrono::milliseconds timeout) {
  // The cubes whose collections open_all() opened: the apply hook opens
  // those a record creates and forgets those it removes.
  if (Status st = note_open_cubes(); !st.ok()) return st;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto lease = std::chrono::milliseconds(config_.lease_ms);
  if (Status st = open_bucket(deadline); !st.ok()) return st;
  if (config_.prefetch_blobs) start_prefetch();
  // Before the replicas apply anything: the cubes their records bring wait
  // for the replay's end.
  indexes_.start_deferring();
  if (Status st = start_replicas(std::move(on_role), std::move(on_behind), deadline); !st.ok())
    return st;
  commits_.set_change_sink([this](std::vector<store::SunkGroup>& groups) { sink(groups); });
  // A deposed owner learns it within a third of a lease, then catches up.
  std::vector<cluster::LogView*> every;
  for (auto& r : replicas_) every.push_back(r.get());
  log_view_ = std::make_unique<cluster::ReplicaSet>(std::move(every), stream_reader_.get());
  reads_ = std::make_unique<cluster::ReadBarrier>(
      *log_view_, std::max(2 * lease, std::chrono::milliseconds(2000)));
  // A forwarded write takes the owner's time (an embedding, a commit, the
  // log's quorum); one not answered within this is of unknown outcome.
  forwarder_ = std::make_unique<cluster::WriteForwarder>(
      config_.name, config_.node_id, *nats_, kForwardingThreads,
      std::max(std::chrono::milliseconds(30000), 4 * lease));
  cluster::MembershipSettings roster;
  roster.cluster = config_.name;
  roster.node = config_.node_id;
  roster.ttl = 2 * lease;
  membership_ = std::make_unique<cluster::Membership>(roster, *nats_, *etcd_,
                                                      [this] { return self_report(); });
  if (Status st = Status::from(membership_->start()); !st.ok()) {
    // Not fatal: the node replicates; only `memctl cluster status` misses it.
    spdlog::warn("cluster: answering status requests: {}", st.message);
  }
  if (config_.store_snapshot_s > 0)
    open_store_snapshots(std::max(lease, std::chrono::milliseconds(2000)));
  await_replay();
  spdlog::info(
      "cluster {}: node {} replicating {} shard(s) through {} (shard 0's log at sequence {})",
      config_.name, config_.node_id, replicas_.size(), replicas_[0]->stream(),
      replicas_[0]->state().position);
  return {};
}

void ClusterNode::start_prefetch() {
  prefetch_ = std::make_unique<BlobPrefetch>(blobs_);
  // What the store referenced before this node prefetched: its backlog,
  // held or not (the prefetch thread looks, off the start path).
  std::vector<std::pair<store::BlobId, std::uint64_t>> referenced;
  std::optional<store::ReadTxn> txn;
  store::Status s = store_.begin_read(&txn);
  if (s.ok()) {
    s = txn->for_each_blob(
        [&](const store::BlobId& id, std::uint64_t size) { referenced.emplace_back(id, size); });
  }
  if (!s.ok()) {
    spdlog::warn("cluster: listing the blobs to prefetch: {}; they are fetched when first used",
                 s.message);
    return;
  }
  if (!referenced.empty()) prefetch_->add_backlog(std::move(referenced));
}

void ClusterNode::stop() {
  {
    std::lock_guard lock(replay_mutex_);
    stopping_ = true;
  }
  replay_wake_.notify_all();
  // Its round ends within a second, before the replicas stop.
  if (replay_watch_.joinable()) replay_watch_.join();
  // Reads waiting for the replicas are answered before they stop.
  if (reads_) reads_->stop();
  // Waits for an import or a share in progress; the engines stay until the
  // node is destroyed.
  if (index_sharing_) indexes_.set_sharing(nullptr);
  // Forwarded requests still waiting fail; none is served from now on.
  if (forwarder_) forwarder_->stop();
  if (membership_) membership_->stop();
  // The reader hands records to the replicas: it stops first. The sink
  // stays installed: with the replicas stopped it refuses, so no write
  // commits unlogged after this.
  if (stream_reader_) stream_reader_->stop();
  if (balancer_) balancer_->stop();  // hands nothing over from now on
  for (auto& r : replicas_) r->stop(true);
}

bool ClusterNode::forward_target(std::uint32_t shard, std::string* owner) const {
  if (!forwarder_ || shard >= replicas_.size() || writable(shard).ok()) return false;
  const cluster::ReplicaState st = replicas_[shard]->state();
  // No owner known, or this node taking the shard over: the refusal says
  // to retry.
  if (st.owner_node.empty() || st.owner_node == config_.node_id || !st.fault.empty()) return false;
  *owner = st.owner_node;
  return true;
}

void ClusterNode::forward(const std::string& owner, std::uint32_t shard, std::uint32_t uid,
                          std::string frame, cluster::WriteForwarder::Done done) {
  if (!forwarder_)
    return done({store::Errc::unavailable, "this node has not joined its cluster"}, {});
  auto still_owner = [this, shard, owner] {
    return shard < replicas_.size() && replicas_[shard]->state().owner_node == owner;
  };
  forwarder_->forward(owner, uid, std::move(frame), std::move(still_owner), std::move(done));
}

Status ClusterNode::serve_forwarded(cluster::WriteForwarder::Handler handler) {
  if (!forwarder_) return Status::unavailable("this node has not joined its cluster");
  return Status::from(forwarder_->serve(std::move(handler)));
}

void ClusterNode::before_read(std::chrono::milliseconds max_staleness,
                              cluster::ReadBarrier::Done done) {
  if (!reads_) return done({store::Errc::unavailable, "this node has not joined its cluster"});
  reads_->wait(max_staleness, std::move(done));
}

bool ClusterNode::current_within(std::chrono::milliseconds max_staleness) {
  return reads_ && reads_->current_within(max_staleness);
}

cluster::StreamReaderCounters ClusterNode::log_reads() const {
  return stream_reader_ ? stream_reader_->counters() : cluster::StreamReaderCounters{};
}

bool ClusterNode::figures(std::vector<cluster::ReplicaState>* replicas,
                          cluster::BucketCounters* bucket, PrefetchCounters* prefetch,
                          cluster::ReadBarrierCounters* reads,
                          cluster::ForwardingCounters* forwarding) const {
  if (replicas_.empty() || !bucket_ || !reads_ || !forwarder_) return false;
  *forwarding = forwarder_->counters();
  replicas->clear();
  for (const auto& r : replicas_) replicas->push_back(r->state());
  *bucket = bucket_->counters();
  *prefetch = prefetch_ ? prefetch_->counters() : PrefetchCounters{};
  *reads = reads_->counters();
  return true;
}

std::vector<std::uint32_t> ClusterNode::owned_shards() const {
  std::vector<std::uint32_t> owned;
  for (const auto& r : replicas_) {
    if (r->owner()) owned.push_back(r->shard());
  }
  return owned;
}

Status ClusterNode::writable() const {
  if (replicas_.empty()) return Status::unavailable("this node has not joined its cluster");
  if (replicas_.size() == 1) return writable(0);
  if (!owned_shards().empty()) return {};
  // Owns none: the owners as this node last heard of them.
  std::map<std::string, std::string> owners;  // node -> its shards
  for (const auto& r : replicas_) {
    const cluster::ReplicaState st = r->state();
    if (st.owner_node.empty() || st.owner_node == config_.node_id) continue;
    std::string& shards = owners[st.owner_node];
    shards += (shards.empty() ? "" : ", ") + std::to_string(r->shard());
  }
  std::string named;
  for (const auto& [node, shards] : owners)
    named += (named.empty() ? ": " : "; ") + ("node " + node + " (shards " + shards + ")");
  return Status::unavailable("this node (" + config_.node_id + ") owns none of the cluster's " +
                             std::to_string(replicas_.size()) +
                             " shards now: writes go to each shard's owner" +
                             (named.empty() ? " (none known yet: retry)" : named));
}

Status ClusterNode::writable(std::uint32_t shard) const {
  if (shard >= replicas_.size()) return Status::unavailable("this node has not joined its cluster");
  const cluster::ShardReplica& replica = *replicas_[shard];
  if (replica.owner()) return {};
  const cluster::ReplicaState st = replica.state();
  const std::string what = replicas_.size() == 1 ? "the store" : "shard " + std::to_string(shard);
  if (!st.fault.empty()) {
    return Status::unavailable("this node (" + config_.node_id + ") stopped replicating" +
                               (replicas_.size() == 1 ? "" : " " + what) + ": " + st.fault);
  }
  if (st.owner_node == config_.node_id) {
    // Claimed, but its barrier is not in the log yet (or the lease is
    // being renewed late): it writes in a moment or gives the shard up.
    return Status::unavailable("this node (" + config_.node_id + ") is taking " + what +
                               " over (making sure it holds the whole log): retry");
  }
  if (st.owner_node.empty()) {
    return Status::unavailable("this node (" + config_.node_id + ") does not own " + what +
                               " now and no owner is known yet (a failover takes about "
                               "cluster.lease_ms): retry");
  }
  return Status::unavailable("this node (" + config_.node_id + ") follows" +
                             (replicas_.size() == 1 ? "" : " " + what) +
                             ": writes go to the owner, node " + st.owner_node);
}

store::Status ClusterNode::tell_indexes(store::WriteTxn& txn, const store::ChangeGroup& group,
                                        std::function<void()>* on_commit) {
  std::vector<store::CubeChange> changes;
  if (store::Status s = store::summarize_changes(group.changes, &changes); !s.ok()) return s;
  // Each cube the record left in the store, as it left it.
  struct Told {
    store::CubeChange change;
    std::optional<store::Cube> cube;  // none: removed
  };
  auto told = std::make_shared<std::vector<Told>>();
  for (store::CubeChange& c : changes) {
    Told t{std::move(c), std::nullopt};
    store::Cube cube;
    store::Status s = txn.reader().read_cube(t.change.cube, &cube);
    if (s.ok()) {
      t.cube = std::move(cube);
    } else if (s.code != store::Errc::not_found) {
      return s;
    }
    told->push_back(std::move(t));
  }
  // Blobs to fetch ahead (cluster.prefetch_blobs): those this node lacks.
  std::vector<std::pair<store::BlobId, std::uint64_t>> wanted;
  if (prefetch_) {
    for (const auto& blob : raised_blobs(group.changes.changes())) {
      if (!blobs_.contains(blob.first)) wanted.push_back(blob);
    }
  }
  *on_commit = [this, told, wanted = std::move(wanted)] {
    for (const auto& [id, size] : wanted) prefetch_->want(id, size);
    std::lock_guard lock(cubes_mutex_);
    for (const Told& t : *told) {
      const store::CubeId id = t.change.cube;
      if ((t.change.removed || !t.cube) && open_cubes_.erase(id)) indexes_.drop(id);
      if (!t.cube) continue;
      if (open_cubes_.insert(id).second) {
        // A cube new to this node: its collections open before its items
        // are queued, as cubeCreate's answer opens them on the owner. Not
        // while replaying from far behind: the items would be embedded and
        // indexed one record at a time, where a shared snapshot or one
        // rebuild from the store at the end does it at once.
        if (indexes_.defer(id, "this node is catching up with the cluster's log")) {
          // Restored once the replay ends (await_replay).
        } else if (Status s = indexes_.open(*t.cube); !s.ok()) {
          spdlog::error("cluster: cube {}: opening its indexes: {}", t.cube->name, s.message);
        }
      }
      for (const store::Item& head : t.change.heads) indexes_.apply(*t.cube, head, nullptr);
      for (store::ItemId item : t.change.purged) indexes_.remove(id, item);
    }
  };
  return {};
}

}  // namespace memos::kernel
