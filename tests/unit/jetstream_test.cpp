// The NATS client and the JetStream calls of the replication log
// (cluster/), against real nats-server processes: one, and a cluster of
// three whose members are killed; and against a hostile fake server.
#define BOOST_TEST_MODULE jetstream
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/jetstream.h"
#include "cluster/nats_connection.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/engine_servers.h"
#include "tests/support/fake_server.h"
#include "tests/support/preconditions.h"

using namespace memos::cluster;
using namespace std::chrono_literals;
using memos::testing::kNatsServer;
using memos::testing::NatsServers;

namespace {

const auto nats_installed = memos::testing::HasProgram{kNatsServer};

std::unique_ptr<NatsConnection> connect_to(std::vector<std::string> servers) {
  NatsOptions options;
  options.servers = std::move(servers);
  options.ping_interval = 300ms;
  Status s;
  auto c = NatsConnection::connect(options, &s);
  BOOST_REQUIRE_MESSAGE(c, s.message);
  return c;
}

// JetStream elects its leaders after the servers listen: retry until the
// stream is there.
void make_stream(JetStream& js, const StreamSettings& settings) {
  Status s;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((s = js.ensure_stream(settings)).code == Errc::unavailable &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
}

// Whether the stream has a leader and each other replica is online and
// current, as the leader reports it (STREAM.INFO's "cluster"): what an
// operator checks before taking another member down. `*said` gets the
// reply, for a failure's message.
bool replicas_current(JetStream& js, const std::string& stream, std::string* said) {
  StreamCluster cluster;
  Status s = js.stream_cluster(stream, &cluster);
  if (!s.ok()) {
    *said = s.message;
    return false;
  }
  *said = "leader \"" + cluster.leader + "\"";
  for (const StreamReplica& r : cluster.replicas)
    *said += ", " + r.server + (r.current ? " current" : " behind") + (r.offline ? " offline" : "");
  if (cluster.leader.empty() || cluster.replicas.size() != 2) return false;
  for (const StreamReplica& r : cluster.replicas)
    if (!r.current || r.offline) return false;
  return true;
}

StreamSettings log_stream(int replicas) {
  StreamSettings s;
  s.name = "MEMOS_test";
  s.subjects = {"memos.test.log.>"};
  s.replicas = replicas;
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(appends_are_fenced_by_the_expected_last_sequence,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  NatsServers servers(1);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  auto nats = connect_to(servers.urls());
  JetStream js(*nats, 5s);
  make_stream(js, log_stream(1));

  std::uint64_t seq = 0, actual = 0;
  BOOST_REQUIRE(js.append("memos.test.log.0", "first", 0, "", &seq).ok());
  BOOST_TEST(seq == 1u);
  // A writer that still believes the subject is empty was deposed: refused,
  // told where the subject is.
  Status s = js.append("memos.test.log.0", "late", 0, "", &seq, &actual);
  BOOST_TEST((s.code == Errc::conflict), s.message);
  BOOST_TEST(actual == 1u);
  BOOST_REQUIRE(js.append("memos.test.log.0", "second", 1, "", &seq).ok());
  BOOST_TEST(seq == 2u);
  // Other subjects (shards) have their own last sequence.
  BOOST_REQUIRE(js.append("memos.test.log.1", "other shard", 0, "", &seq).ok());
  BOOST_TEST(seq == 3u);
  // A retried append with the same id is the first one.
  std::uint64_t again = 0;
  BOOST_REQUIRE(js.append("memos.test.log.1", "once", std::nullopt, "id-1", &seq).ok());
  BOOST_REQUIRE(js.append("memos.test.log.1", "once", std::nullopt, "id-1", &again).ok());
  BOOST_TEST(again == seq);

  std::uint64_t last = 0;
  BOOST_REQUIRE(js.last_sequence("MEMOS_test", "memos.test.log.0", &last).ok());
  BOOST_TEST(last == 2u);
  BOOST_REQUIRE(js.last_sequence("MEMOS_test", "memos.test.log.9", &last).ok());
  BOOST_TEST(last == 0u);
  BOOST_TEST((js.last_sequence("NO_SUCH", "memos.test.log.0", &last).code == Errc::not_found));
  // The stream's own end, whichever subject holds it (a read barrier's log end).
  StreamUsage usage;
  BOOST_REQUIRE(js.stream_usage("MEMOS_test", "", &usage).ok());
  BOOST_TEST(usage.last_sequence == seq);
  BOOST_TEST(usage.messages == 4u);

  // Reading in order, by filter.
  std::vector<std::string> read;
  StoredMessage m;
  for (std::uint64_t next = 1; js.next_message("MEMOS_test", next, "memos.test.log.>", &m).ok();
       next = m.sequence + 1) {
    read.push_back(m.subject + "=" + m.data);
  }
  BOOST_TEST(
      read == (std::vector<std::string>{"memos.test.log.0=first", "memos.test.log.0=second",
                                        "memos.test.log.1=other shard", "memos.test.log.1=once"}),
      boost::test_tools::per_element());
  BOOST_REQUIRE(js.next_message("MEMOS_test", 1, "memos.test.log.1", &m).ok());
  BOOST_TEST(m.sequence == 3u);
  BOOST_TEST((js.next_message("MEMOS_test", 99, "memos.test.log.>", &m).code == Errc::not_found));

  // The same stream again is fine; the name with other settings is not.
  BOOST_TEST(js.ensure_stream(log_stream(1)).ok());
  StreamSettings other = log_stream(1);
  other.subjects = {"elsewhere.>"};
  BOOST_TEST((js.ensure_stream(other).code == Errc::conflict));
}

BOOST_AUTO_TEST_CASE(bad_requests_are_refused_before_they_are_sent,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  NatsServers servers(1);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  auto nats = connect_to(servers.urls());
  BOOST_TEST(nats->max_payload() == (8u << 20));
  NatsMessage reply;
  // No one answers that subject: said at once, not at the timeout.
  auto start = std::chrono::steady_clock::now();
  Status s = nats->request("nobody.here", "x", {}, 10s, &reply);
  BOOST_TEST((s.code == Errc::unavailable));
  const bool fast = std::chrono::steady_clock::now() - start < 5s;
  BOOST_TEST(fast);
  // Over the server's max_payload, a subject with a space, a header with a
  // line break: refused here, and the connection stays usable.
  BOOST_TEST((nats->publish("a.b", std::string((8u << 20) + 1, 'x')).code == Errc::conflict));
  BOOST_TEST((nats->publish("a b", "x").code == Errc::conflict));
  BOOST_TEST((nats->publish("", "x").code == Errc::conflict));
  BOOST_TEST((nats->publish("a.b", "x", {{"K", "v\r\nInjected: 1"}}).code == Errc::conflict));
  BOOST_TEST((nats->publish("a.b", "x", {{"K:", "v"}}).code == Errc::conflict));
  BOOST_TEST(nats->flush(5s).ok());
}

BOOST_AUTO_TEST_CASE(subscriptions_and_requests_survive_a_server_restart,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  NatsServers servers(1);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  auto nats = connect_to(servers.urls());
  std::mutex mutex;
  std::vector<std::string> got;
  BOOST_REQUIRE(nats->subscribe("wake.>",
                                [&](NatsMessage&& m) {
                                  std::lock_guard lock(mutex);
                                  got.push_back(m.subject + ":" + m.data + ":" + m.header("H"));
                                })
                    .ok());
  // A subscriber that answers requests, with headers.
  NatsConnection* self = nats.get();
  BOOST_REQUIRE(
      nats->subscribe("echo", [self](NatsMessage&& m) { self->publish(m.reply, "echo " + m.data); })
          .ok());
  BOOST_REQUIRE(nats->publish("wake.1", "one", {{"H", "h1"}}).ok());
  NatsMessage reply;
  BOOST_REQUIRE(nats->request("echo", "hi", {}, 5s, &reply).ok());
  BOOST_TEST(reply.data == "echo hi");

  // A request waiting when the server dies fails when the connection is
  // noticed lost, long before its own timeout.
  BOOST_REQUIRE(nats->subscribe("silent", [](NatsMessage&&) {}).ok());
  std::thread killer([&] {
    std::this_thread::sleep_for(300ms);
    servers.kill(0);
  });
  auto start = std::chrono::steady_clock::now();
  Status s = nats->request("silent", "x", {}, 30s, &reply);
  killer.join();
  BOOST_TEST((s.code == Errc::unavailable), s.message);
  const bool early = std::chrono::steady_clock::now() - start < 10s;
  BOOST_TEST(early);
  BOOST_TEST((nats->publish("wake.2", "lost").code == Errc::unavailable));

  BOOST_REQUIRE_MESSAGE(servers.restart(0), servers.log(0));
  // The next call reconnects and subscribes again.
  BOOST_REQUIRE(nats->request("echo", "back", {}, 5s, &reply).ok());
  BOOST_TEST(reply.data == "echo back");
  BOOST_REQUIRE(nats->publish("wake.3", "three").ok());
  BOOST_REQUIRE(nats->flush(5s).ok());
  std::lock_guard lock(mutex);
  BOOST_TEST(got == (std::vector<std::string>{"wake.1:one:h1", "wake.3:three:"}),
             boost::test_tools::per_element());
}

// Appends acknowledged by a three-server cluster stay, whichever server
// dies: a client that retries through the others goes on, and reading back
// finds every acknowledged record once, in order.
BOOST_AUTO_TEST_CASE(a_cluster_keeps_every_acknowledged_append_when_a_server_dies,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  NatsServers servers(3);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  auto nats = connect_to(servers.urls());
  JetStream js(*nats, 3s);
  make_stream(js, log_stream(3));
  std::map<std::uint64_t, std::string> acknowledged;
  std::uint64_t last = 0;
  auto append = [&](int i) {
    const std::string data = "record " + std::to_string(i);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      std::uint64_t seq = 0, actual = 0;
      // The message id makes a retry of an append whose acknowledgement was
      // lost a no-op; the expectation keeps one writer's order.
      Status s = js.append("memos.test.log.0", data, last, "w-" + std::to_string(i), &seq, &actual);
      if (s.ok()) {
        acknowledged[seq] = data;
        last = seq;
        return;
      }
      if (s.code == Errc::conflict && actual != last) {
        // Our earlier try did land (its acknowledgement was lost): read it.
        StoredMessage m;
        BOOST_REQUIRE(js.next_message("MEMOS_test", last + 1, "memos.test.log.0", &m).ok());
        BOOST_REQUIRE(m.data == data);
        acknowledged[m.sequence] = data;
        last = m.sequence;
        return;
      }
      const bool in_time = std::chrono::steady_clock::now() < deadline;
      BOOST_REQUIRE_MESSAGE(in_time, s.message);
      std::this_thread::sleep_for(100ms);
    }
  };
  for (int i = 0; i < 40; ++i) append(i);
  servers.kill(0);  // the server the client is connected to, maybe the leader
  for (int i = 40; i < 80; ++i) append(i);
  BOOST_REQUIRE_MESSAGE(servers.restart(0), servers.log(0));
  // One member at a time, as an operator would: another dies only once the
  // stream's leader reports every replica current again — server 0 holds
  // every acknowledged record.
  std::string info;
  const bool current = memos::testing::eventually(
      [&] { return replicas_current(js, "MEMOS_test", &info); }, 90s, 200ms);
  BOOST_REQUIRE_MESSAGE(current, "the stream's replicas are not current: " << info
                                                                           << "\nserver 0's log:\n"
                                                                           << servers.log(0));
  servers.kill(1);
  for (int i = 80; i < 120; ++i) append(i);

  std::uint64_t leader_last = 0;
  BOOST_REQUIRE(js.last_sequence("MEMOS_test", "memos.test.log.0", &leader_last).ok());
  BOOST_TEST(leader_last == last);
  std::vector<std::string> read;
  StoredMessage m;
  for (std::uint64_t next = 1; next <= last; next = m.sequence + 1) {
    Status s;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    // A replica that has not caught up yet answers not_found: ask again.
    while (!(s = js.next_message("MEMOS_test", next, "memos.test.log.0", &m)).ok() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    read.push_back(m.data);
    BOOST_TEST(acknowledged.count(m.sequence) == 1u);
  }
  BOOST_REQUIRE_EQUAL(read.size(), 120u);
  for (int i = 0; i < 120; ++i)
    BOOST_TEST(read[static_cast<std::size_t>(i)] == "record " + std::to_string(i));
}

// The stream's leader gives up its role when asked, and another replica
// leads; appends go on. A server without a cluster names no leader, and
// refuses.
BOOST_AUTO_TEST_CASE(a_stream_leader_steps_down_for_another_replica,
                     *boost::unit_test::label("nats") *
                         boost::unit_test::precondition(nats_installed)) {
  NatsServers servers(3);
  BOOST_REQUIRE_MESSAGE(servers.start(), servers.log(0));
  auto nats = connect_to(servers.urls());
  JetStream js(*nats, 3s);
  make_stream(js, log_stream(3));
  std::string info;
  BOOST_REQUIRE_MESSAGE(memos::testing::eventually(
                            [&] { return replicas_current(js, "MEMOS_test", &info); }, 60s, 200ms),
                        info);
  StreamCluster before;
  BOOST_REQUIRE(js.stream_cluster("MEMOS_test", &before).ok());
  BOOST_TEST(before.clustered);
  for (const StreamReplica& r : before.replicas) BOOST_TEST(r.server != before.leader);
  const Status stepped = js.step_down("MEMOS_test");
  BOOST_REQUIRE_MESSAGE(stepped.ok(), stepped.message);
  StreamCluster after;
  BOOST_TEST(memos::testing::eventually(
      [&] {
        return js.stream_cluster("MEMOS_test", &after).ok() && !after.leader.empty() &&
               after.leader != before.leader;
      },
      30s, 100ms));
  std::uint64_t seq = 0;
  BOOST_TEST(memos::testing::eventually(
      [&] { return js.append("memos.test.log.0", "after", std::nullopt, "", &seq).ok(); }, 30s,
      100ms));
  BOOST_TEST(seq > 0u);
  BOOST_TEST((js.step_down("NO_SUCH_STREAM").code == Errc::not_found));

  NatsServers single(1);
  BOOST_REQUIRE_MESSAGE(single.start(), single.log(0));
  auto alone = connect_to(single.urls());
  JetStream js1(*alone, 3s);
  make_stream(js1, log_stream(1));
  StreamCluster one;
  BOOST_REQUIRE(js1.stream_cluster("MEMOS_test", &one).ok());
  BOOST_TEST(!one.clustered);
  BOOST_TEST(one.leader.empty());
  BOOST_TEST(one.replicas.empty());
  BOOST_TEST((js1.step_down("MEMOS_test").code == Errc::unavailable));  // no cluster
  BOOST_TEST((js1.stream_cluster("NO_SUCH_STREAM", &one).code == Errc::not_found));
}

// A server that breaks the protocol — a message larger than any limit, an
// unknown operation, no INFO — loses the connection; nothing is allocated
// for its claims and the client says what happened.
BOOST_AUTO_TEST_CASE(a_hostile_server_is_dropped_not_believed) {
  const std::vector<std::string> scripts = {
      "HELLO\r\n",
      "INFO {\"max_payload\":1048576}\r\nPONG\r\nMSG _INBOX.x.1 1 99999999999\r\n",
      "INFO {\"max_payload\":1048576}\r\nPONG\r\nBOGUS\r\n",
      "INFO {\"max_payload\":1048576}\r\nPONG\r\nHMSG a 1 50 10\r\n0123456789\r\n",
      "INFO not json\r\n",
      "INFO {}\r\nPONG\r\n" + std::string(100000, 'x'),
  };
  for (const std::string& script : scripts) {
    memos::testing::FakeServer fake(script, false, 500ms);
    NatsOptions options;
    options.servers = {fake.address()};
    options.connect_timeout = 2s;
    Status s;
    auto c = NatsConnection::connect(options, &s);
    if (c) {
      // Connected: the bad frame that follows ends the connection, and the
      // next call cannot reach the (gone) server.
      NatsMessage reply;
      s = c->request("a", "b", {}, 2s, &reply);
    }
    BOOST_TEST(!s.ok(), "script " << script.substr(0, 40));
    BOOST_TEST((s.code == Errc::unavailable || s.code == Errc::corrupt), s.message);
  }
  // Nothing listening: named.
  NatsOptions options;
  options.servers = {"127.0.0.1:1", "not-a-server"};
  Status s;
  BOOST_TEST(!NatsConnection::connect(options, &s));
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(s.message.find("127.0.0.1:1") != std::string::npos, s.message);
  BOOST_TEST(s.message.find("not-a-server: not host:port") != std::string::npos, s.message);
}
