// The cluster's status (memctl cluster status, memos-cluster(7)): built on
// a worker, since it asks etcd, the log and every node on the roster.
#include "kernel/cluster_node.h"
#include "kernel/handlers/areas.h"

namespace memos::kernel {
namespace {

// How long each engine and node has to answer: a silent one is reported as
// such, and the operator's command does not hang on it.
constexpr std::chrono::milliseconds kAskTimeout{1000};

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

}  // namespace

void add_cluster_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::CLUSTER_STATUS, [&s](const RequestContext& c, R::Reader) { cluster_status(s, c); });
}

}  // namespace memos::kernel
