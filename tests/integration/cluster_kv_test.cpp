// A KV state stored on one memosd node restores on another (cluster mode,
// memos-cluster(7), "Blobs shared"): two real memosd processes with the
// llama.cpp executor on a tiny generated model, replicating through a real
// nats-server and etcd. The owner's chat stores the block's state; the
// owner is killed; the follower that takes over restores that state in its
// next chat, fetching the blob from the cluster's bucket, which memctl
// metrics counts; with cluster.prefetch_blobs, it held the blob before.
// Skipped (never passed) without the engines.
#define BOOST_TEST_MODULE cluster_kv
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "memos/client.h"
#include "tests/support/cluster_fixture.h"
#include "tests/support/memosd_process.h"
#include "tests/support/preconditions.h"
#include "tests/support/printing.h"

using memos::testing::engines_installed;
using memos::testing::eventually;
using Engines = memos::testing::SingleEngines;
using memos::testing::MemosdProcess;
using memos::testing::run_command;
using memos::testing::TempDir;
using memos::testing::why;
using namespace std::chrono_literals;

namespace {

struct Model {
  TempDir dir;
  std::string path = dir.path() + "/a.gguf";
  Model() {
    std::string out, err;
    int rc = run_command({MEMOS_MKMODEL, "--out", path, "--vocab", MEMOS_TEST_VOCAB, "--preset",
                          "tiny", "--seed", "1"},
                         &out, &err);
    BOOST_REQUIRE_MESSAGE(rc == 0, "memos-mkmodel: " + err);
  }
};

// A node of cluster "kv" with the executor; the scheduler off, so that the
// only states are the ones the test's chats store.
struct Node {
  TempDir dir;
  std::unique_ptr<MemosdProcess> process;

  // `more`: keys added to its [cluster] section.
  Node(const std::string& name, const Engines& engines, const Model& model, bool prefetch,
       const std::string& more = "") {
    write_conf(name, engines, model, prefetch, more);
    process = std::make_unique<MemosdProcess>(
        MEMOS_MEMOSD, dir.path(),
        std::vector<std::string>{"--config", dir.path() + "/memosd.conf"});
    BOOST_REQUIRE_MESSAGE(process->start(60s), process->log());
  }

  void write_conf(const std::string& name, const Engines& engines, const Model& model,
                  bool prefetch, const std::string& more = "") {
    std::ofstream(dir.path() + "/memosd.conf")
        << memos::testing::cluster_conf("kv", name, engines)
        << "prefetch_blobs = " << (prefetch ? "true" : "false") << "\n"
        << more << "[executor]\nmodel = \"" << model.path
        << "\"\nthreads = 2\nbatch = 32\nmax_tokens = 256\n"
        << "[scheduler]\nenabled = false\n[activation]\nchunk_tokens = 16\n";
  }

  std::unique_ptr<memos::Client> client() const {
    auto connected = memos::Client::connect(process->socket());
    BOOST_REQUIRE_MESSAGE(connected.ok(), why(connected));
    return std::move(connected.value());
  }

  std::size_t blob_files() const {
    std::size_t n = 0;
    const auto blobs = std::filesystem::path(process->data_dir()) / "blobs";
    for (const auto& e : std::filesystem::recursive_directory_iterator(blobs)) {
      if (e.is_regular_file() && e.path().parent_path().filename() != "tmp") ++n;
    }
    return n;
  }
};

// Creates cube "maya" through `c`, once `node` owns the store (a fresh
// cluster elects its first owner within a lease).
void create_cube_when_owner(const Node& node, memos::Client& c) {
  memos::Result<memos::Cube> made = memos::Error{memos::ErrorCode::unavailable};
  BOOST_REQUIRE_MESSAGE(eventually(
                            [&] {
                              made = c.cube_create("maya");
                              return made.ok();
                            },
                            20s),
                        why(made) << "\n"
                                  << node.process->log());
}

memos::ChatOptions over(const std::vector<std::uint64_t>& ids, bool activate) {
  memos::ChatOptions o;
  o.ids = ids;
  o.activate = activate;
  o.max_tokens = 8;
  return o;
}

// Two nodes (n1 the owner, n2 following, both prefetching or neither), a
// cube of four memories, and the owner's chat over them that stored the
// block's state.
struct StoredOnOwner {
  Engines engines;
  Model model;
  Node n1;
  std::unique_ptr<Node> n2;  // started once n1 owns the store, so that n1 stays the owner
  std::vector<std::uint64_t> ids;
  memos::ChatReply stored;

  explicit StoredOnOwner(bool prefetch) : n1("n1", engines, model, prefetch) {
    auto c1 = n1.client();
    create_cube_when_owner(n1, *c1);
    n2 = std::make_unique<Node>("n2", engines, model, prefetch);
    for (const char* text :
         {"Maya is allergic to peanuts and carries an EpiPen everywhere she goes.",
          "Maya moved from Lisbon to Almada in October and rents a small flat there.",
          "Maya swims at the municipal pool every Saturday morning before breakfast.",
          "Maya's brother Tiago is a marine biologist working in the Azores."}) {
      auto added = c1->add("maya", {text});
      BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
      ids.push_back(added->id);
    }
    auto chat = c1->chat("maya", question(), over(ids, true));
    BOOST_REQUIRE_MESSAGE(chat.ok(), why(chat));
    BOOST_REQUIRE_MESSAGE(chat->activation_status.stored,
                          memos::to_string(chat->activation_status));
    stored = chat.value();
  }

  std::string question() const { return "Where does Maya live?"; }

  // n1 killed (-9); n2's chat, once it took over, restoring the state.
  memos::ChatReply take_over() {
    n1.process->stop(SIGKILL);
    auto c2 = n2->client();
    memos::Result<memos::ChatReply> restored = memos::Error{memos::ErrorCode::unavailable};
    BOOST_REQUIRE_MESSAGE(eventually(
                              [&] {
                                restored = c2->chat("maya", question(), over(ids, false));
                                return restored.ok();
                              },
                              30s, 200ms),
                          why(restored) << "\n"
                                        << n2->process->log());
    BOOST_TEST(restored->activation_status.restored, memos::to_string(restored->activation_status)
                                                         << "\n"
                                                         << n2->process->log());
    BOOST_TEST(restored->activation == stored.activation);
    BOOST_TEST(restored->text == stored.text);  // greedy: the same answer
    return restored.value();
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_state_stored_on_the_owner_restores_on_the_node_that_takes_over,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  StoredOnOwner t(false);
  Node& n2 = *t.n2;
  BOOST_TEST(n2.blob_files() == 0u);  // fetched when needed, not before

  // kill -9: n2 takes over once the lease lapses, with the record of the
  // state but not its file, and fetches it for its first chat.
  t.take_over();
  BOOST_TEST(n2.blob_files() == 1u);

  // memctl metrics counts the fetch, and says who owns the store now.
  auto c2 = n2.client();
  auto m = c2->metrics();
  BOOST_REQUIRE_MESSAGE(m.ok(), why(m));
  for (const char* line :
       {"memosd_cluster_owner 1\n",
        "memosd_blob_bucket_transfers_total{direction=\"fetch\",result=\"ok\"} 1\n",
        "memosd_blob_bucket_transfers_total{direction=\"fetch\",result=\"failed\"} 0\n",
        "memosd_blob_prefetch_total{result=\"fetched\"} 0\n", "memosd_cluster_stopped 0\n",
        "memosd_cluster_in_doubt 0\n", "memosd_cluster_records_total{how=\"passed_over\"} 0\n"}) {
    BOOST_TEST(m->find(line) != std::string::npos, line << " in\n" << *m);
  }
  auto states = c2->kv_list("maya");
  BOOST_REQUIRE_MESSAGE(states.ok() && states->size() == 1u, why(states));
  const std::string bytes = "memosd_blob_bucket_bytes_total{direction=\"fetch\"} " +
                            std::to_string(states->front().bytes) + "\n";
  BOOST_TEST(m->find(bytes) != std::string::npos, bytes << " in\n" << *m);
  // The cluster's status counts it in the bucket.
  auto st = c2->cluster_status();
  BOOST_REQUIRE_MESSAGE(st.ok(), why(st));
  BOOST_TEST(st->bucket.note.empty(), st->bucket.note);
  BOOST_TEST(st->bucket.blobs == 1u);
  BOOST_TEST(st->bucket.bytes >= states->front().bytes);
}

// cluster.prefetch_blobs: the follower fetches the state as it applies its
// record, so that the node that takes over restores it from its own disk.
BOOST_AUTO_TEST_CASE(a_prefetching_follower_holds_the_state_before_it_takes_over,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  StoredOnOwner t(true);
  Node& n2 = *t.n2;
  BOOST_TEST(eventually([&] { return n2.blob_files() == 1u; }, 20s), n2.process->log());
  // The file is in place a moment before the prefetch counts it.
  auto m = n2.client()->metrics();
  BOOST_TEST(eventually(
      [&] {
        m = n2.client()->metrics();
        return m.ok() &&
               m->find("memosd_blob_prefetch_total{result=\"fetched\"} 1\n") != std::string::npos;
      },
      10s));
  BOOST_REQUIRE_MESSAGE(m.ok(), why(m));
  for (const char* line :
       {"memosd_blob_prefetch_total{result=\"fetched\"} 1\n",
        "memosd_blob_prefetch_total{result=\"failed\"} 0\n",
        "memosd_blob_bucket_transfers_total{direction=\"fetch\",result=\"ok\"} 1\n"}) {
    BOOST_TEST(m->find(line) != std::string::npos, line << " in\n" << *m);
  }
  t.take_over();
  // Restored from what it held: no second fetch.
  m = n2.client()->metrics();
  BOOST_REQUIRE_MESSAGE(m.ok(), why(m));
  const char* once = "memosd_blob_bucket_transfers_total{direction=\"fetch\",result=\"ok\"} 1\n";
  BOOST_TEST(m->find(once) != std::string::npos, once << " in\n" << *m);
  BOOST_TEST(n2.blob_files() == 1u);
}

// A follower that turns prefetching on (a restart with the key) fetches
// what its store referenced before: its backlog.
BOOST_AUTO_TEST_CASE(a_follower_turning_prefetch_on_fetches_what_its_store_references,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  StoredOnOwner t(false);
  Node& n2 = *t.n2;
  BOOST_TEST(n2.blob_files() == 0u);
  BOOST_REQUIRE_EQUAL(n2.process->stop(), 0);
  n2.write_conf("n2", t.engines, t.model, true);
  BOOST_REQUIRE_MESSAGE(n2.process->start(60s), n2.process->log());
  BOOST_TEST(eventually([&] { return n2.blob_files() == 1u; }, 20s), n2.process->log());
  // The file is in place a moment before the prefetch counts it.
  const char* fetched = "memosd_blob_prefetch_total{result=\"fetched\"} 1\n";
  auto m = n2.client()->metrics();
  BOOST_TEST(eventually(
                 [&] {
                   m = n2.client()->metrics();
                   return m.ok() && m->find(fetched) != std::string::npos;
                 },
                 10s),
             fetched << " in\n"
                     << (m.ok() ? *m : why(m)));
  BOOST_TEST(eventually(
                 [&] {
                   return n2.process->log().find(
                              "referenced and lacked: 1 of 1 blob(s) fetched, 0 failed") !=
                          std::string::npos;
                 },
                 10s),
             n2.process->log());
}

// The blob bucket's sweep (docs/scale-out.md, "Blobs shared"), after each
// compaction on the owner: a state untouched past cluster.blob_grace_s stays
// while a record references it, and leaves the bucket once it is removed.
BOOST_AUTO_TEST_CASE(a_state_no_record_references_leaves_the_bucket,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  Engines engines;
  Model model;
  Node n1("n1", engines, model, false,
          "store_snapshot_s = 1\nlog_retention_s = 0\nblob_grace_s = 2\n");
  auto c = n1.client();
  create_cube_when_owner(n1, *c);
  std::vector<std::uint64_t> ids;
  for (const char* text : {"Maya rents a small flat in Almada.", "Maya swims every Saturday."}) {
    auto added = c->add("maya", {text});
    BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
    ids.push_back(added->id);
  }
  auto chat = c->chat("maya", "Where does Maya live?", over(ids, true));
  BOOST_REQUIRE_MESSAGE(chat.ok() && chat->activation_status.stored, why(chat));
  auto bucket_blobs = [&] {
    auto st = c->cluster_status();
    return st.ok() ? st->bucket.blobs : ~std::uint64_t{0};
  };
  BOOST_TEST(bucket_blobs() == 1u);
  auto swept = [&](const char* result) -> std::int64_t {
    auto m = c->metrics();
    const std::string line =
        std::string("memosd_cluster_blob_sweeps_total{result=\"") + result + "\"} ";
    if (!m.ok()) return -1;
    const auto at = m->find(line);
    return at == std::string::npos ? -1 : std::stoll(m->substr(at + line.size()));
  };
  // Past the grace, a sweep finds it referenced and keeps it.
  BOOST_REQUIRE_MESSAGE(eventually([&] { return swept("referenced") >= 1; }, 30s),
                        n1.process->log());
  BOOST_TEST(swept("removed") == 0);
  BOOST_TEST(bucket_blobs() == 1u);

  auto states = c->kv_list("maya");
  BOOST_REQUIRE_MESSAGE(states.ok() && states->size() == 1u, why(states));
  auto removed = c->kv_remove("maya", states->front().id);
  BOOST_REQUIRE_MESSAGE(removed.ok(), why(removed));
  BOOST_REQUIRE_MESSAGE(eventually([&] { return swept("removed") == 1; }, 30s), n1.process->log());
  BOOST_TEST(bucket_blobs() == 0u);
  BOOST_TEST(swept("failed") == 0);
}
