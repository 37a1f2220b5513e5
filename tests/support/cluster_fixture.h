// cluster_fixture.h — what the cluster tests share (test_shard_replica,
// test_jetstream, test_cluster): the engines started and ready, and a wait
// for a condition that a replica, a failover or an election makes true in
// its own time.
#pragma once

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <thread>

#include "tests/support/engine_servers.h"

namespace memos::testing {

// One nats-server with JetStream and one etcd member, both listening.
struct SingleEngines {
  NatsServers nats{1};
  EtcdServers etcd{1};
  SingleEngines() {
    BOOST_REQUIRE_MESSAGE(nats.start(), nats.log(0));
    BOOST_REQUIRE_MESSAGE(etcd.start(), etcd.log(0));
  }
};

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
