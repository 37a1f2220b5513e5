// Index snapshots shared between nodes (kernel/cluster_index_sharing.h) on a
// real nats-server and etcd: a file one node publishes is found and fetched
// byte for byte by another; a newer one replaces it and the older file
// leaves the bucket; and what a hostile or damaged etcd or bucket holds (a
// key that is not a description, one naming another cube or no blob, a
// size that is not the file's) is refused, never written where the
// retriever would take it. A link or a missing file is not published. A
// bucket JetStream was silent for when the node started opens once it
// answers.
#define BOOST_TEST_MODULE index_sharing
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/names.h"
#include "kernel/cluster_index_sharing.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"

using memos::kernel::ClusterIndexSharing;
using memos::kernel::Code;
using memos::kernel::SharedSnapshot;
using memos::testing::engines_installed;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(random());
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The engines, and a node's sharing of them as memosd opens it.
struct Fixture {
  memos::testing::SingleEngines engines;
  std::unique_ptr<memos::cluster::NatsConnection> nats;
  std::unique_ptr<memos::cluster::EtcdClient> etcd;

  Fixture() {
    memos::cluster::NatsOptions options;
    options.servers = {engines.nats.url(0)};
    memos::store::Status s;
    nats = memos::cluster::NatsConnection::connect(options, &s);
    BOOST_REQUIRE_MESSAGE(nats, s.message);
    etcd = std::make_unique<memos::cluster::EtcdClient>(
        std::vector<std::string>{engines.etcd.url(0)}, 2s);
  }

  std::unique_ptr<ClusterIndexSharing> node(const std::string& dir) {
    memos::kernel::Status s;
    std::unique_ptr<ClusterIndexSharing> sharing;
    sharing = ClusterIndexSharing::open("t", 1, *nats, *etcd, dir, 2s, &s);
    BOOST_REQUIRE_MESSAGE(sharing, s.message);
    // JetStream answers once it has elected itself.
    memos::testing::eventually([&] { return (s = sharing->open_bucket()).ok(); }, 20s, 200ms);
    BOOST_REQUIRE_MESSAGE(sharing->bucket_open(), s.message);
    return sharing;
  }
};

SharedSnapshot snapshot_of(std::uint64_t cube, std::uint64_t version) {
  SharedSnapshot s;
  s.cube = cube;
  s.retriever = "faiss-retriever";
  s.version = version;
  s.documents = 3;
  s.embedder = "hash-v1";
  s.dimension = 64;
  s.language = "english";
  s.node = "a";
  return s;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_shared_snapshot_is_fetched_whole_and_replaced_by_a_newer_one, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, b;
  auto node_a = node(a.path() + "/shared");
  auto node_b = node(b.path() + "/shared");
  // Several of the bucket's chunks.
  const std::string first = random_bytes(1'300'000, 1);
  write_file(a.path() + "/export", first);
  BOOST_REQUIRE(node_a->publish(snapshot_of(7, 40), a.path() + "/export").ok());
  BOOST_TEST(read_file(a.path() + "/export") == first);  // left as it was

  SharedSnapshot found;
  memos::kernel::Status s = node_b->find(7, "faiss-retriever", &found);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(found.version == 40u);
  BOOST_TEST(found.documents == 3u);
  BOOST_TEST(found.embedder == "hash-v1");
  BOOST_TEST(found.dimension == 64u);
  BOOST_TEST(found.language == "english");
  BOOST_TEST(found.node == "a");
  BOOST_TEST(found.bytes == first.size());
  BOOST_TEST(found.blob.size() == 64u);
  BOOST_TEST((node_b->find(7, "xapian-retriever", &found).code == Code::not_found));
  BOOST_TEST((node_b->find(8, "faiss-retriever", &found).code == Code::not_found));
  BOOST_REQUIRE(node_b->find(7, "faiss-retriever", &found).ok());
  s = node_b->fetch(found, b.path() + "/import");
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(read_file(b.path() + "/import") == first);
  const SharedSnapshot older = found;

  // A newer one replaces it, and the older file leaves the bucket.
  const std::string second = random_bytes(5000, 2);
  write_file(a.path() + "/export", second);
  BOOST_REQUIRE(node_a->publish(snapshot_of(7, 90), a.path() + "/export").ok());
  BOOST_REQUIRE(node_b->find(7, "faiss-retriever", &found).ok());
  BOOST_TEST(found.version == 90u);
  BOOST_REQUIRE(node_b->fetch(found, b.path() + "/import").ok());
  BOOST_TEST(read_file(b.path() + "/import") == second);
  s = node_b->fetch(older, b.path() + "/older");
  BOOST_TEST((s.code == Code::not_found), s.message);
  BOOST_TEST(!std::filesystem::exists(b.path() + "/older"));
  BOOST_TEST(node_a->counters().published == 2u);
  BOOST_TEST(node_b->counters().fetch_failures == 1u);
  // The staging folders keep nothing once a file has passed.
  for (const std::string& dir : {a.path() + "/shared", b.path() + "/shared"}) {
    std::size_t files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
      files += e.is_regular_file() ? 1 : 0;
    BOOST_TEST(files == 0u, dir);
  }
}

BOOST_FIXTURE_TEST_CASE(what_etcd_or_the_bucket_holds_is_not_taken_on_trust, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, b;
  auto node_a = node(a.path() + "/shared");
  auto node_b = node(b.path() + "/shared");
  const std::string bytes = random_bytes(20000, 3);
  write_file(a.path() + "/export", bytes);
  BOOST_REQUIRE(node_a->publish(snapshot_of(5, 12), a.path() + "/export").ok());
  const std::string key = memos::cluster::index_snapshot_key("t", 5, "faiss-retriever");
  std::optional<memos::cluster::EtcdKeyValue> kv;
  BOOST_REQUIRE(etcd->get(key, &kv).ok() && kv);
  const nlohmann::json good = nlohmann::json::parse(kv->value);
  SharedSnapshot found;

  auto with = [&](const std::string& field, const nlohmann::json& value) {
    nlohmann::json j = good;
    j[field] = value;
    return j.dump();
  };
  const std::string hostile[] = {
      "",
      "{not json",
      "[1, 2, 3]",
      with("cube", 6),                        // another cube's
      with("retriever", "xapian-retriever"),  // another retriever's
      with("blob", "not hex"),
      with("bytes", -1),
      with("bytes", 1ull << 40),  // more than a bucket takes
      with("node", std::string(1000, 'n')),
      with("version", "twelve"),
  };
  for (const std::string& value : hostile) {
    BOOST_REQUIRE(etcd->put(key, value).ok());
    memos::kernel::Status s = node_b->find(5, "faiss-retriever", &found);
    BOOST_TEST((s.code == Code::internal), value << ": " << s.message);
  }

  // A description whose size is not the file's, or that names a file the
  // bucket lacks: nothing is written where the retriever would take it.
  BOOST_REQUIRE(etcd->put(key, with("bytes", bytes.size() + 1)).ok());
  BOOST_REQUIRE(node_b->find(5, "faiss-retriever", &found).ok());
  memos::kernel::Status s = node_b->fetch(found, b.path() + "/import");
  BOOST_TEST(!s.ok());
  BOOST_TEST(!std::filesystem::exists(b.path() + "/import"));
  BOOST_REQUIRE(etcd->put(key, with("blob", std::string(64, 'a'))).ok());
  BOOST_REQUIRE(node_b->find(5, "faiss-retriever", &found).ok());
  s = node_b->fetch(found, b.path() + "/import");
  BOOST_TEST((s.code == Code::not_found), s.message);
  BOOST_TEST(!std::filesystem::exists(b.path() + "/import"));

  // Nothing that is not a plain file is published.
  BOOST_TEST((node_a->publish(snapshot_of(5, 13), a.path() + "/missing").code == Code::not_found));
  BOOST_REQUIRE(::symlink("/etc/passwd", (a.path() + "/link").c_str()) == 0);
  BOOST_TEST(!node_a->publish(snapshot_of(5, 13), a.path() + "/link").ok());
  BOOST_REQUIRE(::mkdir((a.path() + "/folder").c_str(), 0700) == 0);
  BOOST_TEST(!node_a->publish(snapshot_of(5, 13), a.path() + "/folder").ok());
  BOOST_TEST(node_a->counters().publish_failures == 3u);
}

// Files no key names (a publish cut short, two owners publishing during a
// handover) leave the bucket once older than the cut; named ones, and newer
// ones, stay.
BOOST_FIXTURE_TEST_CASE(files_no_key_names_leave_the_bucket, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, b;
  auto node_a = node(a.path() + "/shared");
  write_file(a.path() + "/export", random_bytes(3000, 5));
  BOOST_REQUIRE(node_a->publish(snapshot_of(7, 40), a.path() + "/export").ok());
  // An orphan: uploaded, never named.
  memos::store::Status st;
  auto files = memos::store::BlobStore::open(a.path() + "/orphans", &st);
  BOOST_REQUIRE(files);
  memos::store::BlobId orphan{};
  BOOST_REQUIRE(files->put(random_bytes(2000, 6), &orphan).ok());
  memos::cluster::BucketSettings settings;
  settings.name = memos::cluster::index_bucket_name("t");
  auto bucket = memos::cluster::BlobBucket::open(settings, *nats, 2s, &st);
  BOOST_REQUIRE(bucket);
  BOOST_REQUIRE(bucket->publish(orphan, 2000, *files).ok());
  // A key that describes nothing keeps nothing.
  BOOST_REQUIRE(etcd->put(memos::cluster::index_snapshot_key("t", 9, "faiss-retriever"), "{").ok());
  std::this_thread::sleep_for(1100ms);
  const auto cut =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  std::uint64_t removed = 0;
  memos::kernel::Status s = node_a->remove_unnamed(cut - 60'000, &removed);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(removed == 0u);  // nothing that old
  BOOST_REQUIRE((s = node_a->remove_unnamed(cut, &removed)).ok());
  BOOST_TEST(removed == 1u);
  auto node_b = node(b.path() + "/shared");
  SharedSnapshot found;
  BOOST_REQUIRE(node_b->find(7, "faiss-retriever", &found).ok());
  s = node_b->fetch(found, b.path() + "/import");
  BOOST_TEST(s.ok(), s.message);
  TempDir c;
  auto into = memos::store::BlobStore::open(c.path() + "/b", &st);
  BOOST_REQUIRE(into);
  BOOST_TEST((bucket->fetch(orphan, 2000, *into).code == memos::store::Errc::not_found));
}

// A node whose sharing opens while JetStream does not answer (a server
// stopped for longer than memosd waits at start) gets it all the same, with
// the bucket opened on a later use once JetStream answers: sharing does not
// stay off until a restart. Meanwhile a publish fails, as `unavailable`.
BOOST_FIXTURE_TEST_CASE(a_bucket_jetstream_was_silent_for_opens_once_it_answers, Fixture,
                        *boost::unit_test::label("engines") *
                            boost::unit_test::precondition(engines_installed)) {
  TempDir a, b;
  auto node_a = node(a.path() + "/shared");
  const std::string file = b.path() + "/export";
  write_file(file, random_bytes(3000, 7));
  engines.nats.signal(0, SIGSTOP);
  memos::kernel::Status s;
  auto node_b = ClusterIndexSharing::open("t", 1, *nats, *etcd, b.path() + "/shared", 300ms, &s);
  const bool opened_while_silent = node_b && node_b->bucket_open();
  memos::kernel::Status refused =
      node_b ? node_b->publish(snapshot_of(8, 1), file) : memos::kernel::Status{};
  engines.nats.signal(0, SIGCONT);
  BOOST_REQUIRE_MESSAGE(node_b, s.message);
  BOOST_TEST(!opened_while_silent);
  BOOST_TEST((refused.code == Code::unavailable), refused.message);
  BOOST_TEST(node_b->counters().publish_failures == 1u);

  // Tried again on a later use, five timeouts after the failed try.
  BOOST_TEST(memos::testing::eventually(
      [&] { return (s = node_b->publish(snapshot_of(8, 1), file)).ok(); }, 20s, 100ms));
  BOOST_TEST(s.ok(), s.message);
  BOOST_TEST(node_b->bucket_open());
  BOOST_TEST(node_b->counters().published == 1u);
  SharedSnapshot found;
  BOOST_REQUIRE(node_a->find(8, "faiss-retriever", &found).ok());
  BOOST_TEST(found.version == 1u);
  s = node_a->fetch(found, a.path() + "/import");
  BOOST_REQUIRE_MESSAGE(s.ok(), s.message);
  BOOST_TEST(read_file(a.path() + "/import") == read_file(file));
}
