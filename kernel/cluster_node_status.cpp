// cluster_node_status.cpp — what a ClusterNode tells the operator
// (memctl cluster status, memos-cluster(7)): its own line for the roster,
// the cluster as it sees it, and the log leader's step-down.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "cluster/jetstream.h"
#include "cluster/names.h"
#include "kernel/cluster_node.h"

namespace memos::kernel {

cluster::NodeReport ClusterNode::self_report() const {
  // One line for the node: an owner of any shard; the furthest position in
  // the log (the shards share one stream); records summed; the first fault.
  cluster::NodeReport report;
  report.node = config_.node_id;
  report.answered = true;
  report.policies = policy_digest_();
  for (const auto& r : replicas_) {
    const cluster::ReplicaState st = r->state();
    if (report.note.empty() && !st.fault.empty())
      report.note =
          (replicas_.size() > 1 ? "shard " + std::to_string(r->shard()) + ": " : "") + st.fault;
    report.owner = report.owner || st.owner;
    report.position = std::max(report.position, st.position);
    report.appended += st.appended;
    report.applied += st.applied;
  }
  return report;
}

Status ClusterNode::report(std::chrono::milliseconds timeout, ClusterReport* out) {
  if (replicas_.empty() || !membership_ || !bucket_)
    return Status::unavailable("this node has not joined its cluster");
  ClusterReport r;
  r.name = config_.name;
  r.node = config_.node_id;
  r.replicas = config_.replicas;
  r.lease_ms = config_.lease_ms;
  cluster::JetStream js(*nats_, timeout);
  for (const auto& replica : replicas_) {
    ClusterReport::Shard shard;
    shard.shard = replica->shard();
    std::optional<cluster::EtcdKeyValue> holder;
    store::Status s = etcd_->get(replica->owner_key(), &holder);
    if (s.ok()) {
      if (holder) shard.owner = holder->value;
    } else {
      shard.note = "etcd: " + s.message;
    }
    s = js.last_sequence(replica->stream(), replica->subject(), &shard.last_sequence);
    if (!s.ok()) shard.note += (shard.note.empty() ? "" : "; ") + ("log: " + s.message);
    r.shards.push_back(std::move(shard));
  }
  r.bucket.name = bucket_->name();
  cluster::BucketUsage usage;
  if (store::Status u = bucket_->usage(timeout, &usage); u.ok()) {
    r.bucket.blobs = usage.blobs;
    r.bucket.bytes = usage.bytes;
  } else {
    r.bucket.note = u.message;
  }
  r.log.stream = cluster::log_stream(config_.name);
  if (store::Status l = js.stream_cluster(r.log.stream, &r.log.cluster); !l.ok()) {
    r.log.note = l.message;
  } else if (!r.log.cluster.clustered) {
    r.log.note = "its nats-server runs without a cluster: one replica, no leader elected";
  }
  report_compaction(&r.compaction);
  store::Status s = membership_->gather(timeout, &r.nodes);
  if (!s.ok()) {
    // Without the roster, this node still reports itself.
    r.shards.back().note += (r.shards.back().note.empty() ? "" : "; ") + ("roster: " + s.message);
    r.nodes.push_back(self_report());
  }
  r.policies_agree = nodes_with_other_policies(policy_digest_(), r.nodes).empty();
  *out = std::move(r);
  return {};
}

Status ClusterNode::step_down_log(std::chrono::milliseconds timeout, ClusterReport::Log* out) {
  *out = {};
  if (replicas_.empty()) return Status::unavailable("this node has not joined its cluster");
  if (config_.replicas < 2) {
    return Status::conflict("the log has one replica (cluster.replicas = 1): no other can lead it");
  }
  const std::string stream = cluster::log_stream(config_.name);
  out->stream = stream;
  cluster::JetStream js(*nats_, std::min(timeout, std::chrono::milliseconds(2000)));
  cluster::StreamCluster before;
  if (store::Status s = js.stream_cluster(stream, &before); !s.ok()) return Status::from(s);
  if (before.leader.empty())
    return Status::unavailable("the log has no leader now (an election is under way): retry");
  out->previous_leader = before.leader;
  if (store::Status s = js.step_down(stream); !s.ok()) return Status::from(s);
  spdlog::warn("cluster {}: asked the log's leader, {}, to step down", config_.name, before.leader);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    cluster::StreamCluster after;
    if (js.stream_cluster(stream, &after).ok() && !after.leader.empty() &&
        after.leader != before.leader) {
      spdlog::info("cluster {}: the log's leader is {} now", config_.name, after.leader);
      out->cluster = std::move(after);
      return {};
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::unavailable("the log's leader, " + before.leader +
                             ", stepped down, but no other led it within " +
                             std::to_string(timeout.count()) + " ms");
}

}  // namespace memos::kernel
