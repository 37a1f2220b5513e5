// cluster_fixture.h — what the cluster tests share (test_shard_replica,
// test_jetstream, test_cluster, test_cluster_kv): the engines started and
// ready, a node's [cluster] section on them, and a wait
// for a condition that a replica, a failover or an election makes true in
// its own time.
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "tests/support/engine_servers.h"

namespace memos::testing {

// One nats-server with JetStream and one etcd member, both listening;
// with `tls`, both require TLS and a client certificate (engine_servers.h).
struct SingleEngines {
  NatsServers nats;
  EtcdServers etcd;
  explicit SingleEngines(const EngineTls& tls = {}) : nats(1, tls), etcd(1, tls) {
    BOOST_REQUIRE_MESSAGE(nats.start(), nats.log(0));
    BOOST_REQUIRE_MESSAGE(etcd.start(), etcd.log(0));
  }
};

// memosd.conf's [cluster] section for node `node` of cluster `cluster` on
// `engines`: one replica, a 1.5 s lease, so that failovers in tests take
// about two seconds; `shards` shards (0: no key, the cluster's count, 16 for
// the node that makes it).
inline std::string cluster_conf(const std::string& cluster, const std::string& node,
                                const SingleEngines& engines, std::uint32_t shards = 1) {
  return "[cluster]\nenabled = true\nname = \"" + cluster + "\"\nnode_id = \"" + node +
         "\"\nnats = [\"" + engines.nats.url(0) + "\"]\netcd = [\"" + engines.etcd.url(0) +
         "\"]\nreplicas = 1\nlease_ms = 1500\n" +
         (shards ? "shards = " + std::to_string(shards) + "\n" : std::string());
}

// Polls `condition` every `step` until it holds (true) or `timeout` has
// passed (false).
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(step);
  }
  return true;
}

}  // namespace memos::testing
