// shard_balance.h — shard owners spread over the nodes on purpose
// (docs/scale-out.md, "Placing shards").
//
// Without it the first node to start claimed every shard, and shards moved
// only as owners failed. Now each node's balancer hands one of its shards
// over when it owns at least two more than the least loaded node on the
// roster, one shard per two leases, so that a node joining a running
// cluster gets its part: it names that node the shard's successor in etcd
// (/memos/<cluster>/shards/<n>/successor) and gives the lease back
// (ShardReplica::hand_over). While a free shard names a successor, only the
// successor claims it (may_claim), for two leases at most (a successor that
// does not claim leaves the shard to anyone then); the claimer erases the
// name. A shard freed by a lapsed lease names none: whoever sees it free
// first claims it, so failover is as fast as it was.
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

struct Handover {
  std::uint32_t shard = 0;
  std::string successor;
};
// What `self` should hand over now, if anything: its highest shard, to the
// least loaded node on the roster (the first in roster order among equals),
// when `self` owns at least two more than that node.
std::optional<Handover> shard_to_hand_over(const std::string& self,
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

  // The claim gate of shard `shard`'s replica (ShardReplica::set_claim_gate):
  // whether this node may claim it, free for `free_for`, now (see above).
  // Erases the successor's name when it says yes. An etcd that does not
  // answer says yes: the claim itself needs etcd.
  bool may_claim(std::uint32_t shard, std::chrono::steady_clock::duration free_for) const;
  // The key naming `shard`'s successor.
  std::string successor_key(std::uint32_t shard) const;
  // Each shard's owner as this node knows it ("" none).
  std::vector<std::string> owners() const;

 private:
  void run();

  const BalanceSettings settings_;
  const std::vector<ShardReplica*> replicas_;
  EtcdClient& etcd_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace memos::cluster
