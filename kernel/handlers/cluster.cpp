// The cluster's status (memctl cluster status, memos-cluster(7)): built on
// a worker, since it asks etcd, the log and every node on the roster. And
// the log leader's step-down (memctl cluster step-down), on a worker too:
// it waits for the election.
#include "kernel/cluster_node.h"
#include "kernel/handlers/areas.h"

namespace memos::kernel {
namespace {

// How long each engine and node has to answer: a silent one is reported as
// such, and the operator's command does not hang on it.
constexpr std::chrono::milliseconds kAskTimeout{1000};
// How long a step-down waits for the log's replicas to elect another
// leader: JetStream's elections take a few seconds on a loaded cluster.
constexpr std::chrono::milliseconds kElectionTimeout{10000};

void put_log(const ClusterReport::Log& log, wire::LogStatus::Builder b) {
  b.setStream(log.stream);
  b.setLeader(log.cluster.leader);
  auto replicas = b.initReplicas(static_cast<unsigned>(log.cluster.replicas.size()));
  for (unsigned i = 0; i < log.cluster.replicas.size(); ++i) {
    const cluster::StreamReplica& r = log.cluster.replicas[i];
    replicas[i].setServer(r.server);
    replicas[i].setCurrent(r.current);
    replicas[i].setOffline(r.offline);
    replicas[i].setActiveMs(r.active_ms);
    replicas[i].setLag(r.lag);
  }
  b.setNote(log.note);
  b.setPreviousLeader(log.previous_leader);
}

void put_report(const ClusterReport& c, wire::ClusterStatus::Builder b) {
  b.setEnabled(true);
  b.setName(c.name);
  b.setNode(c.node);
  b.setReplicas(c.replicas);
  b.setLeaseMs(c.lease_ms);
  auto shards = b.initShards(static_cast<unsigned>(c.shards.size()));
  std::uint64_t last = 0;
  for (unsigned i = 0; i < c.shards.size(); ++i) {
    const ClusterReport::Shard& s = c.shards[i];
    shards[i].setShard(s.shard);
    shards[i].setOwner(s.owner);
    shards[i].setLastSequence(s.last_sequence);
    shards[i].setNote(s.note);
    last = std::max(last, s.last_sequence);
  }
  auto nodes = b.initNodes(static_cast<unsigned>(c.nodes.size()));
  for (unsigned i = 0; i < c.nodes.size(); ++i) {
    const cluster::NodeReport& n = c.nodes[i];
    nodes[i].setNode(n.node);
    nodes[i].setAnswered(n.answered);
    nodes[i].setNote(n.note);
    nodes[i].setOwner(n.owner);
    nodes[i].setPosition(n.position);
    // The log's last record was read before the nodes were asked: a node
    // that answered later may hold more, which is not "behind".
    nodes[i].setBehind(n.answered && last > n.position ? last - n.position : 0);
    nodes[i].setAppended(n.appended);
    nodes[i].setApplied(n.applied);
    nodes[i].setPolicies(n.policies);
  }
  b.setPoliciesDiffer(!c.policies_agree);
  auto bucket = b.initBucket();
  bucket.setName(c.bucket.name);
  bucket.setBlobs(c.bucket.blobs);
  bucket.setBytes(c.bucket.bytes);
  bucket.setNote(c.bucket.note);
  auto compaction = b.initCompaction();
  compaction.setSnapshotNode(c.compaction.snapshot_node);
  compaction.setSnapshotTimeMs(c.compaction.snapshot_time_ms);
  compaction.setSnapshotBytes(c.compaction.snapshot_bytes);
  auto floor = compaction.initFloor(static_cast<unsigned>(c.compaction.floor.size()));
  for (unsigned i = 0; i < c.compaction.floor.size(); ++i) floor.set(i, c.compaction.floor[i]);
  compaction.setNote(c.compaction.note);
  put_log(c.log, b.initLog());
}

// Errors: permission_denied (not an admin: the roster is the operator's),
// ClusterNode::report's. On a single node: enabled false.
void cluster_status(const Services& s, const RequestContext& ctx) {
  if (!ctx.admin) {
    return ctx.fail(Status::permission_denied(
        "the cluster's status is for root, memosd's own uid or an admin tenant"));
  }
  if (!s.cluster) {
    return ctx.respond([](wire::Response::Builder r) { r.initCluster().setEnabled(false); });
  }
  s.run_on_worker([&s, ctx] {
    ClusterReport report;
    if (Status st = s.cluster->report(kAskTimeout, &report); !st.ok()) return ctx.fail(st);
    ctx.respond([&](wire::Response::Builder r) { put_report(report, r.initCluster()); });
  });
}

// Errors: permission_denied (not an admin: the log serves every tenant),
// conflict (one node, or a log of one replica), ClusterNode::step_down_log's.
void cluster_step_down(const Services& s, const RequestContext& ctx) {
  if (!ctx.admin) {
    return ctx.fail(Status::permission_denied(
        "stepping the log's leader down is for root, memosd's own uid or an admin tenant"));
  }
  if (!s.cluster) {
    return ctx.fail(Status::conflict("memosd runs as one node: there is no log to step down"));
  }
  s.run_on_worker([&s, ctx] {
    ClusterReport::Log log;
    if (Status st = s.cluster->step_down_log(kElectionTimeout, &log); !st.ok()) return ctx.fail(st);
    ctx.respond([&](wire::Response::Builder r) {
      auto c = r.initCluster();
      c.setEnabled(true);
      c.setName(s.cluster->name());
      c.setNode(s.cluster->node_id());
      put_log(log, c.initLog());
    });
  });
}

}  // namespace

void add_cluster_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::CLUSTER_STATUS, [&s](const RequestContext& c, R::Reader) { cluster_status(s, c); });
  table.add(R::CLUSTER_STEP_DOWN,
            [&s](const RequestContext& c, R::Reader) { cluster_step_down(s, c); });
}

}  // namespace memos::kernel
