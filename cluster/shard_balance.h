// shard_balance.h — shard owners spread over the nodes on purpose
// (docs/scale-out.md, "Placing shards").
//
// Without it the first node to start claimed every shard, and shards moved
// only as owners failed. Now each node's balancer:
//   - lets a replica claim a free shard only while this node owns no more
//     shards than the least loaded node on the roster (may_claim), or once
//     the shard has been free for two leases (a shard the others do not
//     claim is never left without an owner);
//   - hands one of its shards back (ShardReplica::hand_over: the lease
//     revoked, so another node claims it at once) when it owns at least two
//     more than the least loaded node on the roster, one shard per two
//     leases, so that a node joining a running cluster gets its part.
// Ownership itself stays the shard's lease (shard_replica.h): the balancer
// only decides when to claim and when to give back, so a wrong view of the
// roster costs balance, never safety. Writes reach a shard's owner wherever
// they arrive (write_forwarding.h).
//
// Threading: start() and stop() on one thread; may_claim() from the
// replicas' threads; the roster is read on the balancer's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"

namespace memos::cluster {

class ShardReplica;

// How many shards each node owns: every node on `roster` (0 if none) and
// every owner named in `owners` (one entry per shard, "" for none).
std::map<std::string, std::uint32_t> shards_owned(const std::vector<std::string>& owners,
                                                  const std::vector<std::string>& roster);
// Whether `self` may claim a free shard now: it owns no more than the least
// loaded node on the roster (true with no roster known).
bool may_claim_free_shard(const std::string& self, const std::vector<std::string>& owners,
                          const std::vector<std::string>& roster);
// The shard `self` should give back now, if any: the highest it owns, when
// it owns at least two more than the least loaded node on the roster.
std::optional<std::uint32_t> shard_to_hand_over(const std::string& self,
                                                const std::vector<std::string>& owners,
                                                const std::vector<std::string>& roster);

struct BalanceSettings {
  std::string cluster = "memos";  // the roster's prefix in etcd
  std::string node;
  std::chrono::milliseconds lease{3000};
};

class ShardBalancer {
 public:
  // `replicas`: every shard's, in shard order; they outlive the balancer.
  ShardBalancer(BalanceSettings settings, std::vector<ShardReplica*> replicas, EtcdClient& etcd);
  ~ShardBalancer();  // stop()
  ShardBalancer(const ShardBalancer&) = delete;
  ShardBalancer& operator=(const ShardBalancer&) = delete;

  void start();
  void stop();  // idempotent

  // The replicas' claim gate (ShardReplica::set_claim_gate): see above.
  bool may_claim(std::chrono::steady_clock::duration free_for) const;
  // Each shard's owner as this node knows it ("" none).
  std::vector<std::string> owners() const;

 private:
  void run();

  const BalanceSettings settings_;
  const std::vector<ShardReplica*> replicas_;
  EtcdClient& etcd_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  std::vector<std::string> roster_;  // as last read; empty: not yet
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace memos::cluster
