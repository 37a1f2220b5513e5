// The etcd client of cluster mode (cluster/etcd_client.h) against real etcd
// processes — one, and a cluster of three that loses a member — and against
// a fake server that answers nonsense.
#define BOOST_TEST_MODULE etcd
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cluster/base64.h"
#include "cluster/etcd_client.h"
#include "tests/support/engine_servers.h"
#include "tests/support/fake_server.h"
#include "tests/support/preconditions.h"

using namespace memos::cluster;
using namespace std::chrono_literals;
using memos::testing::EtcdServers;
using memos::testing::kEtcd;

namespace {

const auto etcd_installed = memos::testing::HasProgram{kEtcd};

// etcd listens before it has a leader: wait for a call to go through.
void wait_ready(EtcdClient& etcd) {
  Status s;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  std::optional<EtcdKeyValue> kv;
  while (!(s = etcd.get("ready?", &kv)).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
}

}  // namespace

BOOST_AUTO_TEST_CASE(base64_round_trips_and_refuses_what_is_not) {
  for (std::string bytes : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                            std::string("\0\xff\x10z", 4)}) {
    std::string back;
    BOOST_REQUIRE(base64_decode(base64_encode(bytes), &back));
    BOOST_TEST(back == bytes);
  }
  BOOST_TEST(base64_encode("memos") == "bWVtb3M=");
  std::string out;
  for (const char* bad : {"a", "abc", "ab=c", "====", "a===", "ab*d", "bWVtb3M=bWVt"}) {
    BOOST_TEST(!base64_decode(bad, &out), bad);
  }
}

BOOST_AUTO_TEST_CASE(leases_hold_keys_created_only_if_absent,
                     *boost::unit_test::label("etcd") *
                         boost::unit_test::precondition(etcd_installed)) {
  EtcdServers servers(1);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  EtcdClient etcd(servers.urls(), 3s);
  wait_ready(etcd);

  std::int64_t lease = 0, ttl = 0;
  BOOST_REQUIRE(etcd.grant_lease(2, &lease).ok());
  BOOST_TEST(lease != 0);
  bool created = false;
  BOOST_REQUIRE(etcd.create("/memos/t/shards/0/owner", "node-a", lease, &created).ok());
  BOOST_TEST(created);
  // A second claimant is told who holds it.
  std::int64_t other = 0;
  BOOST_REQUIRE(etcd.grant_lease(2, &other).ok());
  EtcdKeyValue holder;
  BOOST_REQUIRE(etcd.create("/memos/t/shards/0/owner", "node-b", other, &created, &holder).ok());
  BOOST_TEST(!created);
  BOOST_TEST(holder.value == "node-a");
  BOOST_TEST(holder.lease == lease);

  // Kept alive, the key stays past the TTL; let lapse, it goes.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(700ms);
    BOOST_REQUIRE(etcd.keep_alive(lease, &ttl).ok());
    BOOST_TEST(ttl == 2);
  }
  std::optional<EtcdKeyValue> kv;
  BOOST_REQUIRE(etcd.get("/memos/t/shards/0/owner", &kv).ok());
  BOOST_REQUIRE(kv.has_value());
  BOOST_TEST(kv->value == "node-a");
  std::this_thread::sleep_for(3500ms);
  BOOST_TEST((etcd.keep_alive(lease, &ttl).code == Errc::not_found));
  BOOST_REQUIRE(etcd.get("/memos/t/shards/0/owner", &kv).ok());
  BOOST_TEST(!kv.has_value());
  // `other` lapsed too: a claim on a lapsed lease is refused, so a node
  // that lost its lease cannot come back on it.
  BOOST_TEST(
      (etcd.create("/memos/t/shards/0/owner", "node-b", other, &created).code == Errc::not_found));
}

BOOST_AUTO_TEST_CASE(keys_list_by_prefix_and_go_with_a_revoked_lease,
                     *boost::unit_test::label("etcd") *
                         boost::unit_test::precondition(etcd_installed)) {
  EtcdServers servers(1);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  EtcdClient etcd(servers.urls(), 3s);
  wait_ready(etcd);
  std::int64_t lease = 0;
  BOOST_REQUIRE(etcd.grant_lease(30, &lease).ok());
  BOOST_REQUIRE(etcd.put("/memos/t/nodes/a", "10.0.0.1:7420", lease).ok());
  BOOST_REQUIRE(etcd.put("/memos/t/nodes/b", std::string("\0\xff", 2)).ok());
  BOOST_REQUIRE(etcd.put("/memos/t/nodez", "not under nodes/").ok());
  std::vector<EtcdKeyValue> nodes;
  BOOST_REQUIRE(etcd.list("/memos/t/nodes/", &nodes).ok());
  BOOST_REQUIRE_EQUAL(nodes.size(), 2u);
  BOOST_TEST(nodes[0].key == "/memos/t/nodes/a");
  BOOST_TEST(nodes[0].lease == lease);
  BOOST_TEST(nodes[1].value == std::string("\0\xff", 2));
  BOOST_REQUIRE(etcd.revoke(lease).ok());
  BOOST_REQUIRE(etcd.revoke(lease).ok());  // already gone: no error
  BOOST_REQUIRE(etcd.list("/memos/t/nodes/", &nodes).ok());
  BOOST_REQUIRE_EQUAL(nodes.size(), 1u);
  BOOST_REQUIRE(etcd.erase("/memos/t/nodes/b").ok());
  BOOST_REQUIRE(etcd.erase("/memos/t/nodes/b").ok());
  BOOST_REQUIRE(etcd.list("/memos/t/nodes/", &nodes).ok());
  BOOST_TEST(nodes.empty());
}

// A member dies: calls go on through the others, and what a lease holds is
// kept.
BOOST_AUTO_TEST_CASE(a_three_member_cluster_answers_without_one,
                     *boost::unit_test::label("etcd") *
                         boost::unit_test::precondition(etcd_installed)) {
  EtcdServers servers(3);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  EtcdClient etcd(servers.urls(), 2s);
  wait_ready(etcd);
  std::int64_t lease = 0, ttl = 0;
  BOOST_REQUIRE(etcd.grant_lease(5, &lease).ok());
  bool created = false;
  BOOST_REQUIRE(etcd.create("/memos/t/shards/1/owner", "node-a", lease, &created).ok());
  BOOST_REQUIRE(created);
  // The member the client tries first: the first listed, or the one that
  // answered while the first was still starting.
  const std::vector<std::string> urls = servers.urls();
  const std::string first = etcd.preferred_endpoint();
  const int dead = static_cast<int>(std::find(urls.begin(), urls.end(), first) - urls.begin());
  BOOST_REQUIRE(dead < static_cast<int>(urls.size()));
  servers.kill(dead);
  Status s;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!(s = etcd.keep_alive(lease, &ttl)).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  std::optional<EtcdKeyValue> kv;
  BOOST_REQUIRE(etcd.get("/memos/t/shards/1/owner", &kv).ok());
  BOOST_REQUIRE(kv.has_value());
  BOOST_TEST(kv->value == "node-a");
  // The member that answered is tried first from now on: the dead one costs
  // its timeout once, not on every call.
  const std::string answering = etcd.preferred_endpoint();
  BOOST_TEST(answering != first);
  BOOST_REQUIRE_MESSAGE(servers.restart(dead), servers.log(dead));
  BOOST_REQUIRE(etcd.get("/memos/t/shards/1/owner", &kv).ok());
  BOOST_TEST(etcd.preferred_endpoint() == answering);  // the dead one is back, not preferred
}

// A server that is not etcd (or a broken one) gets a clear error.
BOOST_AUTO_TEST_CASE(a_server_that_answers_nonsense_is_not_believed) {
  const std::vector<std::string> replies = {
      "garbage\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{not json",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\n\r\n{\"kvs\":[{\"key\":\"***\"}]}",
      "HTTP/1.1 200 OK\r\n\r\n[1,2]",
      "",  // closes at once
  };
  for (const std::string& reply : replies) {
    memos::testing::FakeServer fake(reply, true);
    EtcdClient etcd({fake.address()}, 2s);
    std::optional<EtcdKeyValue> kv;
    Status s = etcd.get("k", &kv);
    BOOST_TEST(!s.ok(), "reply " << reply.substr(0, 30));
    BOOST_TEST((s.code == Errc::corrupt || s.code == Errc::unavailable), s.message);
  }
  EtcdClient nowhere({"127.0.0.1:1", "no-port"}, 1s);
  std::optional<EtcdKeyValue> kv;
  Status s = nowhere.get("k", &kv);
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(s.message.find("no-port: not host:port") != std::string::npos, s.message);
}
