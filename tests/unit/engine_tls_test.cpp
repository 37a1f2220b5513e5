// TLS to the engines (cluster/tls_stream.h): the NATS client and the etcd
// client against a real nats-server and etcd that require TLS and a client
// certificate of the cluster's CA (mutual TLS), with certificates the
// openssl command makes for the test; every way it must refuse — no TLS, a
// server of another CA or another name, a node certificate of another CA
// or none, a server that does not offer TLS, one that answers garbage or
// nothing to the handshake — and the files it must refuse to load.
#define BOOST_TEST_MODULE engine_tls
#include <boost/test/unit_test.hpp>

#include <poll.h>

#include <chrono>
#include <fstream>
#include <string>

#include "cluster/byte_stream.h"
#include "cluster/etcd_client.h"
#include "cluster/jetstream.h"
#include "cluster/nats_connection.h"
#include "cluster/tcp_dial.h"
#include "cluster/tls_stream.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/engine_servers.h"
#include "tests/support/fake_server.h"
#include "tests/support/preconditions.h"
#include "tests/support/test_certificates.h"

using namespace memos::cluster;
using namespace std::chrono_literals;
using memos::testing::EngineTls;
using memos::testing::EtcdServers;
using memos::testing::FakeServer;
using memos::testing::NatsServers;
using memos::testing::TestCertificates;

namespace {

const auto openssl_installed = memos::testing::HasProgram{memos::testing::kOpenssl};

boost::test_tools::assertion_result tls_engines(boost::unit_test::test_unit_id id) {
  if (auto r = openssl_installed(id); !r) return r;
  return memos::testing::engines_installed(id);
}

EngineTls server_files(const TestCertificates& certs, const std::string& who = "server") {
  const memos::testing::ServerTls s = certs.server(who);
  return {s.cert, s.key, s.ca};
}

std::shared_ptr<const TlsContext> context(const TlsFiles& files) {
  std::shared_ptr<const TlsContext> out;
  const Status s = TlsContext::open(files, &out);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  return out;
}

Status connect_nats(const std::string& url, std::shared_ptr<const TlsContext> tls,
                    std::unique_ptr<NatsConnection>* out = nullptr) {
  NatsOptions options;
  options.servers = {url};
  options.connect_timeout = 2000ms;
  options.ping_interval = 300ms;
  options.tls = std::move(tls);
  Status s;
  auto c = NatsConnection::connect(options, &s);
  // A server that refuses the client's certificate says so after TLS 1.3's
  // handshake, at the first read: the PONG never comes.
  if (c && s.ok()) s = c->flush(2s);
  if (out) *out = std::move(c);
  return s;
}

bool mentions(const Status& s, const std::string& words) {
  return s.message.find(words) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_log_and_etcd_work_over_mutual_tls,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(tls_engines)) {
  TestCertificates certs;
  NatsServers nats(1, server_files(certs));
  BOOST_REQUIRE_MESSAGE(nats.start(), nats.log(0));
  EtcdServers etcd(1, server_files(certs));
  BOOST_REQUIRE_MESSAGE(etcd.start(), etcd.log(0));
  const auto tls = context(TlsFiles{certs.ca(), certs.cert(), certs.key()});

  std::unique_ptr<NatsConnection> c;
  Status s = connect_nats(nats.url(0), tls, &c);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  // JetStream over TLS: a stream, fenced appends, and a record larger than
  // a TLS record (16 KiB) read back whole.
  JetStream js(*c, 5s);
  StreamSettings settings;
  settings.name = "TLS";
  settings.subjects = {"tls.>"};
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((s = js.ensure_stream(settings)).code == Errc::unavailable &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(200ms);
  }
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  const std::string big(3u << 20, 'r');
  std::uint64_t first = 0, second = 0;
  s = js.append("tls.a", "small", 0, "", &first);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  s = js.append("tls.a", big, first, "", &second);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  StoredMessage m;
  s = js.next_message("TLS", second, "tls.a", &m);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(m.data.size() == big.size());
  BOOST_TEST((m.data == big));
  // A subscription's deliveries over the same connection.
  std::atomic<int> seen{0};
  BOOST_REQUIRE(c->subscribe("tls.wake", [&](NatsMessage&&) { ++seen; }).ok());
  BOOST_REQUIRE(c->flush(2s).ok());
  for (int i = 0; i < 50; ++i) BOOST_REQUIRE(c->publish("tls.wake", std::string(20000, 'w')).ok());
  BOOST_TEST(memos::testing::eventually([&] { return seen.load() == 50; }, 5s));

  // etcd's gateway over HTTPS with the node's certificate.
  EtcdClient client({etcd.url(0)}, 3s, tls);
  std::int64_t lease = 0;
  s = client.grant_lease(5, &lease);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_REQUIRE(client.put("/tls/key", std::string(40000, 'v'), lease).ok());
  std::optional<EtcdKeyValue> kv;
  BOOST_REQUIRE(client.get("/tls/key", &kv).ok());
  BOOST_REQUIRE(kv);
  BOOST_TEST(kv->value.size() == 40000u);
  BOOST_TEST(kv->lease == lease);
}

// A connection to a server the context spoke to before resumes that
// session (etcd's client connects once per call): the first handshake is
// full, the next ones resumed. A session is kept for the name it checked:
// dialling the same address under a name the certificate does not hold
// gets no session offered, so the full handshake refuses it.
BOOST_AUTO_TEST_CASE(a_second_connection_to_a_server_resumes_its_session,
                     *boost::unit_test::precondition(tls_engines)) {
  TestCertificates certs;
  EtcdServers etcd(1, server_files(certs));
  BOOST_REQUIRE_MESSAGE(etcd.start(), etcd.log(0));
  auto tls = context(TlsFiles{certs.ca(), certs.cert(), certs.key()});
  std::string host, port;
  BOOST_REQUIRE(split_host_port(etcd.url(0), &host, &port));
  // One HTTP exchange over a connection of its own; whether its handshake
  // resumed a session, or why it failed.
  auto exchange = [&](const std::string& name, bool* resumed) -> Status {
    std::string why;
    const int fd = tcp_dial(etcd.url(0), 2s, &why);
    if (fd < 0) return {Errc::unavailable, why};
    ByteStream stream(fd);  // closes fd
    std::unique_ptr<TlsStream> secure;
    if (Status s =
            TlsStream::handshake(tls, fd, name, std::chrono::steady_clock::now() + 2s, &secure);
        !s.ok()) {
      return s;
    }
    *resumed = secure->resumed();
    const std::string request =
        "GET /health HTTP/1.1\r\nHost: " + name + ":" + port + "\r\nConnection: close\r\n\r\n";
    if (Status s = secure->write_all(request); !s.ok()) return s;
    // Read to the end: TLS 1.3 sends the session's ticket after the
    // handshake, and the reply's bytes bring it.
    std::string reply;
    char chunk[4096];
    for (int reads = 0; reads < 1000; ++reads) {
      std::size_t got = 0;
      pollfd p{fd, POLLIN, 0};
      if (!secure->pending() && ::poll(&p, 1, 2000) <= 0) break;
      if (!secure->read_some(chunk, sizeof chunk, &got).ok()) break;
      reply.append(chunk, got);
    }
    if (!reply.starts_with("HTTP/1.1 200")) return {Errc::corrupt, "reply: " + reply};
    secure.reset();  // keeps its session, before the stream closes fd
    return {};
  };
  bool resumed = true;
  Status s = exchange(host, &resumed);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(!resumed);
  for (int i = 0; i < 2; ++i) {
    s = exchange(host, &resumed);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
    BOOST_TEST(resumed);
  }
  s = exchange("elsewhere.example", &resumed);
  BOOST_TEST(!s.ok());
  BOOST_TEST(mentions(s, "certificate was refused"), s.message);
  // The etcd client, whose every call connects anew, still answers.
  std::int64_t lease = 0;
  s = EtcdClient({etcd.url(0)}, 3s, tls).grant_lease(5, &lease);
  BOOST_TEST(s.ok(), s.message);
}

BOOST_AUTO_TEST_CASE(every_connection_tls_must_refuse_is_refused_with_its_reason,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(tls_engines)) {
  TestCertificates certs;
  NatsServers nats(1, server_files(certs));
  BOOST_REQUIRE_MESSAGE(nats.start(), nats.log(0));
  NatsServers misnamed(1, server_files(certs, "misnamed"));
  BOOST_REQUIRE_MESSAGE(misnamed.start(), misnamed.log(0));
  NatsServers plain(1);
  BOOST_REQUIRE_MESSAGE(plain.start(), plain.log(0));
  EtcdServers etcd(1, server_files(certs));
  BOOST_REQUIRE_MESSAGE(etcd.start(), etcd.log(0));
  const auto good = context(TlsFiles{certs.ca(), certs.cert(), certs.key()});

  // No TLS to a server that requires it.
  Status s = connect_nats(nats.url(0), nullptr);
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(mentions(s, "requires TLS"), s.message);
  // A server whose certificate another CA signed.
  s = connect_nats(nats.url(0), context(TlsFiles{certs.other_ca(), certs.cert(), certs.key()}));
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(mentions(s, "certificate was refused"), s.message);
  // The right CA, another name: the certificate names elsewhere.example.
  s = connect_nats(misnamed.url(0), good);
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(mentions(s, "certificate was refused"), s.message);
  // No client certificate, or one of another CA: the server refuses.
  s = connect_nats(nats.url(0), context(TlsFiles{certs.ca(), "", ""}));
  BOOST_TEST((s.code == Errc::unavailable), s.message);
  s = connect_nats(nats.url(0), context(TlsFiles{certs.ca(), certs.cert("other-node"),
                                                 certs.key("other-node")}));
  BOOST_TEST((s.code == Errc::unavailable), s.message);
  // TLS configured and a server that does not offer it: never in the clear.
  s = connect_nats(plain.url(0), good);
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(mentions(s, "does not offer TLS"), s.message);
  // And the same server still answers a client that does speak TLS.
  BOOST_TEST(connect_nats(nats.url(0), good).ok());

  // etcd: no certificate, another CA's server, plain HTTP to HTTPS.
  std::int64_t lease = 0;
  s = EtcdClient({etcd.url(0)}, 2s, context(TlsFiles{certs.ca(), "", ""})).grant_lease(5, &lease);
  BOOST_TEST((s.code == Errc::unavailable), s.message);
  s = EtcdClient({etcd.url(0)}, 2s, context(TlsFiles{certs.other_ca(), certs.cert(), certs.key()}))
          .grant_lease(5, &lease);
  BOOST_TEST((s.code == Errc::unavailable));
  BOOST_TEST(mentions(s, "certificate was refused"), s.message);
  std::string plain_url = etcd.url(0);
  plain_url.replace(0, 8, "http://");
  s = EtcdClient({plain_url}, 2s).grant_lease(5, &lease);
  BOOST_TEST(!s.ok(), s.message);
  BOOST_TEST(EtcdClient({etcd.url(0)}, 2s, good).grant_lease(5, &lease).ok());
}

// A hostile or broken server at the handshake: garbage where the
// ServerHello belongs, or silence. Refused in time, nothing kept.
BOOST_AUTO_TEST_CASE(a_server_that_breaks_the_handshake_is_refused_in_time,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(tls_engines)) {
  TestCertificates certs;
  const auto good = context(TlsFiles{certs.ca(), certs.cert(), certs.key()});
  const std::string info = "INFO {\"max_payload\":1048576,\"tls_required\":true}\r\n";
  {
    // Bytes past INFO before the handshake: the protocol broken.
    FakeServer garbage(info + std::string(4096, '\x16'), false, 500ms);
    const Status s = connect_nats("tls://" + garbage.address(), good);
    BOOST_TEST(!s.ok());
    BOOST_TEST(mentions(s, "before the TLS handshake"), s.message);
  }
  {
    FakeServer silent(info, false, 4000ms);
    const Status s = connect_nats("tls://" + silent.address(), good);
    BOOST_TEST((s.code == Errc::unavailable));
    // Given up at the connect timeout (2 s), not when the server hung up.
    BOOST_TEST(mentions(s, "no answer in time"), s.message);
  }
  {
    // An HTTP "server" that answers the ClientHello with plain text.
    FakeServer etcd_plain("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", true);
    std::int64_t lease = 0;
    const Status s =
        EtcdClient({"https://" + etcd_plain.address()}, 2s, good).grant_lease(5, &lease);
    BOOST_TEST((s.code == Errc::unavailable), s.message);
  }
}

BOOST_AUTO_TEST_CASE(tls_files_that_cannot_serve_are_refused_at_open,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(openssl_installed)) {
  TestCertificates certs;
  std::shared_ptr<const TlsContext> out;
  const std::string empty = certs.path("empty.pem");
  std::ofstream(empty).flush();
  struct Case {
    TlsFiles files;
    Errc code;
    const char* words;
  };
  const Case cases[] = {
      {TlsFiles{certs.path("absent.pem"), "", ""}, Errc::io, "absent.pem"},
      {TlsFiles{certs.path("garbage.pem"), "", ""}, Errc::corrupt, "garbage.pem"},
      {TlsFiles{empty, "", ""}, Errc::corrupt, "empty.pem"},
      {TlsFiles{"/dev/zero", "", ""}, Errc::corrupt, "not a file"},
      {TlsFiles{certs.path(""), "", ""}, Errc::corrupt, "not a file"},  // a folder
      {TlsFiles{certs.ca(), certs.cert(), ""}, Errc::conflict, "needs its key"},
      {TlsFiles{certs.ca(), "", certs.key()}, Errc::conflict, "needs its key"},
      {TlsFiles{certs.ca(), certs.cert(), certs.key("other-node")}, Errc::corrupt, "match"},
      {TlsFiles{certs.ca(), certs.key(), certs.key()}, Errc::corrupt, "node.key"},
      {TlsFiles{certs.ca(), certs.cert(), certs.cert()}, Errc::corrupt, "node.pem"},
  };
  for (const Case& c : cases) {
    const Status s = TlsContext::open(c.files, &out);
    BOOST_TEST((s.code == c.code),
               c.files.ca << " " << c.files.cert << " " << c.files.key << ": " << s.message);
    BOOST_TEST(mentions(s, c.words), s.message);
  }
  BOOST_TEST(TlsContext::open(TlsFiles{certs.ca(), certs.cert(), certs.key()}, &out).ok());
  BOOST_TEST(TlsContext::open({}, &out).ok());  // the system's CAs, no certificate
}
