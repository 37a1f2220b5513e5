// cluster_node_policies.cpp — ClusterNode's comparison of tenant policies
// across the cluster (docs/scale-out.md, "Policies: compared, not
// distributed"): each node reports its policy folder's digest, and compares
// its own with the roster's, warning while they differ.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "kernel/cluster_node.h"

namespace memos::kernel {

std::vector<std::string> ClusterNode::nodes_with_other_policies(
    const std::string& own, const std::vector<cluster::NodeReport>& roster) {
  std::vector<std::string> differ;
  for (const cluster::NodeReport& n : roster)
    if (n.answered && !n.policies.empty() && n.policies != own) differ.push_back(n.node);
  return differ;
}

std::vector<std::string> ClusterNode::check_policies(std::chrono::milliseconds timeout) {
  if (!membership_) return {};
  std::vector<cluster::NodeReport> roster;
  if (store::Status s = membership_->gather(timeout, &roster); !s.ok()) {
    spdlog::debug("cluster {}: policies not compared, no roster: {}", config_.name, s.message);
    return {};
  }
  const std::string own = policy_digest_();
  std::vector<std::string> differ = nodes_with_other_policies(own, roster);
  std::lock_guard lock(policy_check_mutex_);
  policies_differ_.store(differ.size());
  if (differ == policies_differed_) return differ;
  if (differ.empty()) {
    spdlog::info("cluster {}: every node on the roster enforces this node's tenant policies now",
                 config_.name);
  } else {
    // The first 12 digits are what `memctl cluster status` shows.
    std::string others;
    for (const cluster::NodeReport& n : roster) {
      if (std::find(differ.begin(), differ.end(), n.node) == differ.end()) continue;
      others += (others.empty() ? "" : ", ") + n.node + " (" + n.policies.substr(0, 12) + ")";
    }
    spdlog::warn(
        "cluster {}: tenant policies differ between this node ({}) and {}: a request is bounded "
        "by the policies of the node that runs it; make every node's policy folder the same and "
        "reload it (memos-cluster(7), \"Policies\")",
        config_.name, own.substr(0, 12), others);
  }
  policies_differed_ = differ;
  return differ;
}

}  // namespace memos::kernel
