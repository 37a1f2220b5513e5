#include "cluster/shard_balance.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/names.h"
#include "cluster/shard_replica.h"

namespace memos::cluster {

std::map<std::string, std::uint32_t> shards_owned(const std::vector<std::string>& owners,
                                                  const std::vector<std::string>& roster) {
  std::map<std::string, std::uint32_t> counts;
  for (const std::string& node : roster) counts[node];
  for (const std::string& owner : owners) {
    if (!owner.empty()) ++counts[owner];
  }
  return counts;
}

namespace {

// The fewest shards a node on the roster owns (none listed: nullopt).
std::optional<std::uint32_t> least_on_roster(const std::map<std::string, std::uint32_t>& counts,
                                             const std::vector<std::string>& roster) {
  std::optional<std::uint32_t> least;
  for (const std::string& node : roster)
    least = std::min(least.value_or(UINT32_MAX), counts.at(node));
  return least;
}

}  // namespace

std::optional<Handover> shard_to_hand_over(const std::string& self,
                                           const std::vector<std::string>& owners,
                                           const std::vector<std::string>& roster) {
  const auto counts = shards_owned(owners, roster);
  const auto least = least_on_roster(counts, roster);
  const auto mine = counts.find(self);
  if (!least || mine == counts.end() || mine->second < *least + 2) return std::nullopt;
  Handover h;
  for (const std::string& node : roster) {
    if (counts.at(node) == *least) {
      h.successor = node;
      break;
    }
  }
  for (std::size_t shard = owners.size(); shard-- > 0;) {
    if (owners[shard] == self) {
      h.shard = static_cast<std::uint32_t>(shard);
      return h;
    }
  }
  return std::nullopt;
}

ShardBalancer::ShardBalancer(BalanceSettings settings, std::vector<ShardReplica*> replicas,
                             EtcdClient& etcd)
    : settings_(std::move(settings)), replicas_(std::move(replicas)), etcd_(etcd) {}

ShardBalancer::~ShardBalancer() {
  stop();
}

void ShardBalancer::start() {
  thread_ = std::thread([this] { run(); });
}

void ShardBalancer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> ShardBalancer::owners() const {
  std::vector<std::string> owners;
  for (const ShardReplica* r : replicas_) {
    const ReplicaState st = r->state();
    owners.push_back(st.owner ? settings_.node : st.owner_node);
  }
  return owners;
}

std::string ShardBalancer::successor_key(std::uint32_t shard) const {
  return shard_successor_key(settings_.cluster, shard);
}

bool ShardBalancer::may_claim(std::uint32_t shard,
                              std::chrono::steady_clock::duration free_for) const {
  std::optional<EtcdKeyValue> named;
  if (!etcd_.get(successor_key(shard), &named).ok() || !named) return true;
  if (named->value != settings_.node && free_for < 2 * settings_.lease) return false;
  // This node claims it now: the name has done its work (should the claim
  // fail, another node won it, and the name is no use either).
  etcd_.erase(successor_key(shard));
  return true;
}

void ShardBalancer::run() {
  const std::string prefix = roster_prefix(settings_.cluster);
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      // A roster key lasts two leases past its node's end: reading it as
      // often keeps the view that current.
      if (wake_.wait_for(lock, 2 * settings_.lease, [&] { return stopping_; })) return;
    }
    std::vector<EtcdKeyValue> keys;
    if (Status s = etcd_.list(prefix, &keys); !s.ok()) continue;  // the replicas say etcd is down
    std::vector<std::string> roster;
    for (const EtcdKeyValue& kv : keys) roster.push_back(kv.key.substr(prefix.size()));
    const auto give = shard_to_hand_over(settings_.node, owners(), roster);
    if (!give) continue;
    // The successor first: a shard freed without one goes to whoever sees
    // it first, this node included.
    if (Status s = etcd_.put(successor_key(give->shard), give->successor); !s.ok()) continue;
    spdlog::info("shard {}: handed over by this node ({}), which owns more shards than node {}",
                 give->shard, settings_.node, give->successor);
    replicas_[give->shard]->hand_over();
  }
}

}  // namespace memos::cluster
