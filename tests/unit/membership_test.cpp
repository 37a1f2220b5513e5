// The cluster's roster (cluster/membership.h): a node's report survives its
// JSON and a peer's hostile answer is refused without echoing its bytes; on a
// real nats-server and etcd, gather() lists every node that announced itself,
// each as it answers now, a silent one and a key that names no node as such,
// and a node that stopped cleanly no more.
#define BOOST_TEST_MODULE membership
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/preconditions.h"

using namespace memos::cluster;
using namespace std::chrono_literals;
using memos::testing::engines_installed;
using memos::testing::eventually;
using Engines = memos::testing::SingleEngines;

namespace {

// A node on the roster: its own connections, and a report it can change.
struct Member {
  std::unique_ptr<NatsConnection> nats;
  std::unique_ptr<EtcdClient> etcd;
  std::atomic<std::uint64_t> position{0};
  std::unique_ptr<Membership> membership;

  Member(const std::string& node, const Engines& engines) {
    NatsOptions options;
    options.servers = engines.nats.urls();
    Status s;
    nats = NatsConnection::connect(options, &s);
    BOOST_REQUIRE_MESSAGE(nats, s.message);
    etcd = std::make_unique<EtcdClient>(engines.etcd.urls(), 2s);
    MembershipSettings settings;
    settings.cluster = "t";
    settings.node = node;
    settings.ttl = 2s;
    membership = std::make_unique<Membership>(settings, *nats, *etcd, [this, node] {
      NodeReport r;
      r.node = node;
      r.owner = node == "n1";
      r.position = position.load();
      r.applied = node == "n1" ? 0 : position.load();
      r.appended = node == "n1" ? position.load() : 0;
      return r;
    });
    const Status started = membership->start();
    BOOST_REQUIRE_MESSAGE(started.ok(), started.message);
  }
};

const NodeReport* find(const std::vector<NodeReport>& roster, const std::string& node) {
  for (const auto& r : roster)
    if (r.node == node) return &r;
  return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_report_survives_its_json) {
  NodeReport r;
  r.node = "n-7_b";
  r.owner = true;
  r.position = 18446744073709551615ull;
  r.appended = 3;
  r.applied = 9;
  NodeReport back;
  std::string why;
  BOOST_REQUIRE(decode_report(encode_report(r), &back, &why));
  BOOST_TEST(back.answered);
  BOOST_TEST(back.node == r.node);
  BOOST_TEST(back.owner);
  BOOST_TEST(back.position == r.position);
  BOOST_TEST(back.appended == 3u);
  BOOST_TEST(back.applied == 9u);
  BOOST_TEST(back.note.empty());
  BOOST_TEST(back.policies.empty());  // a node too old to say
  r.policies = std::string(32, 'a') + std::string(32, '9');
  BOOST_REQUIRE(decode_report(encode_report(r), &back, &why));
  BOOST_TEST(back.policies == r.policies);
  // What a node says is wrong with it comes along, as printable text only
  // and bounded: a peer's words reach a terminal.
  r.note = "stopped: \x1b[31mred\x1b[0m " + std::string(5000, 'x');
  BOOST_REQUIRE(decode_report(encode_report(r), &back, &why));
  BOOST_TEST(back.note.size() == memos::cluster::kMaxNote);
  BOOST_TEST(back.note.find('\x1b') == std::string::npos);
  BOOST_TEST(back.note.rfind("stopped: ?[31mred", 0) == 0u, back.note.substr(0, 40));
}

BOOST_AUTO_TEST_CASE(a_hostile_answer_is_no_report_and_is_not_echoed) {
  const std::vector<std::string> hostile = {
      "",
      "not json \x1b[31m",
      "[]",
      "{}",
      R"({"node":"n1","owner":true,"position":1,"appended":0})",  // a field missing
      R"({"node":1,"owner":true,"position":1,"appended":0,"applied":0})",
      R"({"node":"n1","owner":"yes","position":1,"appended":0,"applied":0})",
      R"({"node":"n1","owner":true,"position":-1,"appended":0,"applied":0})",
      R"({"node":"n1","owner":true,"position":1e400,"appended":0,"applied":0})",
      R"({"node":"n1","owner":true,"position":184467440737095516160,"appended":0,"applied":0})",
      R"({"node":"n1","owner":true,"position":1,"appended":0,"applied":0,"note":7})",
      // A digest is 64 lowercase hex digits, nothing a terminal would act on.
      R"({"node":"n1","owner":true,"position":1,"appended":0,"applied":0,"policies":7})",
      R"({"node":"n1","owner":true,"position":1,"appended":0,"applied":0,"policies":"abc"})",
      R"({"node":"n1","owner":true,"position":1,"appended":0,"applied":0,"policies":")" +
          std::string(63, 'a') + "\\u001b\"}",
      R"({"node":"n1","owner":true,"position":1,"appended":0,"applied":0,"policies":")" +
          std::string(64, 'A') + "\"}",
      std::string(100000, '['),
  };
  for (const std::string& text : hostile) {
    NodeReport r;
    std::string why;
    BOOST_TEST(!decode_report(text, &r, &why), text.substr(0, 80));
    BOOST_TEST(!why.empty());
    BOOST_TEST(why.find('\x1b') == std::string::npos);
    BOOST_TEST(!r.answered);
  }
}

BOOST_AUTO_TEST_CASE(gather_lists_every_node_as_it_answers_now,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  Engines engines;
  Member n1("n1", engines);
  auto n2 = std::make_unique<Member>("n2", engines);
  n1.position = 40;
  n2->position = 38;

  std::vector<NodeReport> roster;
  BOOST_REQUIRE(n2->membership->gather(1s, &roster).ok());
  BOOST_REQUIRE(roster.size() == 2u);
  BOOST_TEST(roster[0].node == "n1");  // in node order
  BOOST_TEST(roster[0].answered, roster[0].note);
  BOOST_TEST(roster[0].owner);
  BOOST_TEST(roster[0].position == 40u);
  BOOST_TEST(roster[0].appended == 40u);
  BOOST_TEST(roster[1].node == "n2");
  BOOST_TEST(roster[1].answered);
  BOOST_TEST(!roster[1].owner);
  BOOST_TEST(roster[1].applied == 38u);

  // What a node says is what it is doing now, not when it joined.
  n2->position = 40;
  BOOST_REQUIRE(n1.membership->gather(1s, &roster).ok());
  BOOST_TEST(find(roster, "n2")->position == 40u);

  // A key on the roster nobody answers for is listed as silent; one that names no node is never
  // asked about, and shown without its control bytes.
  BOOST_REQUIRE(n1.etcd->put("/memos/t/nodes/n3", "n3").ok());
  BOOST_REQUIRE(n1.etcd->put("/memos/t/nodes/bad.name\x1b[2J", "x").ok());
  BOOST_REQUIRE(n1.membership->gather(500ms, &roster).ok());
  BOOST_REQUIRE(roster.size() == 4u);
  const NodeReport* silent = find(roster, "n3");
  BOOST_REQUIRE(silent);
  BOOST_TEST(!silent->answered);
  BOOST_TEST(!silent->note.empty());
  const NodeReport* odd = find(roster, "bad.name?[2J");
  BOOST_REQUIRE(odd);
  BOOST_TEST(!odd->answered);
  BOOST_TEST(odd->note.find("names no node") != std::string::npos, odd->note);
  BOOST_REQUIRE(n1.etcd->erase("/memos/t/nodes/n3").ok());
  BOOST_REQUIRE(n1.etcd->erase("/memos/t/nodes/bad.name\x1b[2J").ok());

  // A clean stop takes the node off the roster at once.
  n2.reset();
  BOOST_REQUIRE(n1.membership->gather(1s, &roster).ok());
  BOOST_REQUIRE(roster.size() == 1u);
  BOOST_TEST(roster[0].node == "n1");
}

BOOST_AUTO_TEST_CASE(a_node_whose_lease_lapsed_puts_its_key_back,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  Engines engines;
  Member n1("n1", engines);
  // As if etcd had been out of reach for longer than the lease: the lease
  // ends and takes the key with it.
  std::optional<EtcdKeyValue> key;
  BOOST_REQUIRE(n1.etcd->get(n1.membership->key(), &key).ok());
  BOOST_REQUIRE(key);
  BOOST_REQUIRE(key->lease != 0);
  BOOST_REQUIRE(n1.etcd->revoke(key->lease).ok());
  std::vector<NodeReport> roster;
  BOOST_REQUIRE(n1.membership->gather(1s, &roster).ok());
  BOOST_TEST(roster.empty());
  // The next renewal finds the lease gone and announces the node again.
  BOOST_TEST(eventually(
      [&] {
        return n1.membership->gather(1s, &roster).ok() && roster.size() == 1 &&
               roster[0].node == "n1";
      },
      5s));
}
