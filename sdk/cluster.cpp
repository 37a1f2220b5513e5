// sdk/cluster.cpp — Client's calls on the cluster (memos-cluster(7)):
// cluster_status and cluster_step_down, each one request through Impl::call.
#include <utility>

#include "memos/client.h"
#include "sdk/client_impl.h"
#include "sdk/reply_decode.h"

namespace memos {

using sdk::str;
using sdk::wrong_reply;

namespace {

LogStatus decode_log(wire::LogStatus::Reader l) {
  LogStatus out;
  out.stream = str(l.getStream());
  out.leader = str(l.getLeader());
  for (auto r : l.getReplicas()) {
    out.replicas.push_back(LogReplica{str(r.getServer()), r.getCurrent(), r.getOffline(),
                                      r.getActiveMs(), r.getLag()});
  }
  out.note = str(l.getNote());
  out.previous_leader = str(l.getPreviousLeader());
  return out;
}

Result<ClusterStatus> decode_cluster(const wire::Response::Reader& r) {
  if (!r.isCluster()) return wrong_reply<ClusterStatus>();
  auto c = r.getCluster();
  ClusterStatus out{c.getEnabled(),
                    str(c.getName()),
                    str(c.getNode()),
                    c.getReplicas(),
                    c.getLeaseMs(),
                    {},
                    {},
                    {},
                    {},
                    c.getPoliciesDiffer(),
                    decode_log(c.getLog())};
  for (auto s : c.getShards()) {
    out.shards.push_back(
        ShardStatus{s.getShard(), str(s.getOwner()), s.getLastSequence(), str(s.getNote())});
  }
  for (auto n : c.getNodes()) {
    out.nodes.push_back(NodeStatus{str(n.getNode()), n.getAnswered(), str(n.getNote()),
                                   n.getOwner(), n.getPosition(), n.getBehind(), n.getAppended(),
                                   n.getApplied(), str(n.getPolicies())});
  }
  auto b = c.getBucket();
  out.bucket = BucketStatus{str(b.getName()), b.getBlobs(), b.getBytes(), str(b.getNote())};
  auto k = c.getCompaction();
  out.compaction.snapshot_node = str(k.getSnapshotNode());
  out.compaction.snapshot_time_ms = k.getSnapshotTimeMs();
  out.compaction.snapshot_bytes = k.getSnapshotBytes();
  for (std::uint64_t f : k.getFloor()) out.compaction.floor.push_back(f);
  out.compaction.note = str(k.getNote());
  return out;
}

}  // namespace

std::future<Result<ClusterStatus>> Client::cluster_status_async() {
  return impl_->call<ClusterStatus>([](wire::Request::Builder r) { r.setClusterStatus(); },
                                    decode_cluster);
}

std::future<Result<ClusterStatus>> Client::cluster_step_down_async() {
  return impl_->call<ClusterStatus>([](wire::Request::Builder r) { r.setClusterStepDown(); },
                                    decode_cluster);
}

}  // namespace memos
