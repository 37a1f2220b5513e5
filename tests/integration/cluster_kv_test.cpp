// A KV state stored on one memosd node restores on another (cluster mode,
// memos-cluster(7), "Blobs shared"): two real memosd processes with the
// llama.cpp executor on a tiny generated model, replicating through a real
// nats-server and etcd. The owner's chat stores the block's state; the
// owner is killed; the follower that takes over restores that state in its
// next chat, fetching the blob from the cluster's bucket, which memctl
// metrics counts. Skipped (never passed) without the engines.
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

  Node(const std::string& name, const Engines& engines, const Model& model) {
    const std::string conf = dir.path() + "/memosd.conf";
    std::ofstream(conf) << "[cluster]\nenabled = true\nname = \"kv\"\nnode_id = \"" << name
                        << "\"\nnats = [\"" << engines.nats.url(0) << "\"]\netcd = [\""
                        << engines.etcd.url(0) << "\"]\nreplicas = 1\nlease_ms = 1500\n"
                        << "[executor]\nmodel = \"" << model.path
                        << "\"\nthreads = 2\nbatch = 32\nmax_tokens = 256\n"
                        << "[scheduler]\nenabled = false\n[activation]\nchunk_tokens = 16\n";
    process = std::make_unique<MemosdProcess>(MEMOS_MEMOSD, dir.path(),
                                              std::vector<std::string>{"--config", conf});
    BOOST_REQUIRE_MESSAGE(process->start(60s), process->log());
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

memos::ChatOptions over(const std::vector<std::uint64_t>& ids, bool activate) {
  memos::ChatOptions o;
  o.ids = ids;
  o.activate = activate;
  o.max_tokens = 8;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_state_stored_on_the_owner_restores_on_the_node_that_takes_over,
                     *boost::unit_test::label("engines") *
                         boost::unit_test::precondition(engines_installed)) {
  Engines engines;
  Model model;
  Node n1("n1", engines, model);
  auto c1 = n1.client();
  memos::Result<memos::Cube> made = memos::Error{memos::ErrorCode::unavailable};
  BOOST_REQUIRE_MESSAGE(eventually(
                            [&] {
                              made = c1->cube_create("maya");
                              return made.ok();
                            },
                            20s),
                        why(made) << "\n"
                                  << n1.process->log());
  Node n2("n2", engines, model);
  std::vector<std::uint64_t> ids;
  for (const char* text :
       {"Maya is allergic to peanuts and carries an EpiPen everywhere she goes.",
        "Maya moved from Lisbon to Almada in October and rents a small flat there.",
        "Maya swims at the municipal pool every Saturday morning before breakfast.",
        "Maya's brother Tiago is a marine biologist working in the Azores."}) {
    auto added = c1->add("maya", {text});
    BOOST_REQUIRE_MESSAGE(added.ok(), why(added));
    ids.push_back(added->id);
  }
  auto stored = c1->chat("maya", "Where does Maya live?", over(ids, true));
  BOOST_REQUIRE_MESSAGE(stored.ok(), why(stored));
  BOOST_REQUIRE_MESSAGE(stored->activation_status.stored,
                        memos::to_string(stored->activation_status));
  BOOST_TEST(n2.blob_files() == 0u);  // fetched when needed, not before

  // kill -9: n2 takes over once the lease lapses, with the record of the
  // state but not its file.
  n1.process->stop(SIGKILL);
  auto c2 = n2.client();
  memos::Result<memos::ChatReply> restored = memos::Error{memos::ErrorCode::unavailable};
  BOOST_REQUIRE_MESSAGE(eventually(
                            [&] {
                              restored =
                                  c2->chat("maya", "Where does Maya live?", over(ids, false));
                              return restored.ok();
                            },
                            30s, 200ms),
                        why(restored) << "\n"
                                      << n2.process->log());
  BOOST_TEST(restored->activation_status.restored, memos::to_string(restored->activation_status)
                                                       << "\n"
                                                       << n2.process->log());
  BOOST_TEST(restored->activation == stored->activation);
  BOOST_TEST(restored->text == stored->text);  // greedy: the same answer
  BOOST_TEST(n2.blob_files() == 1u);

  // memctl metrics counts the fetch, and says who owns the store now.
  auto m = c2->metrics();
  BOOST_REQUIRE_MESSAGE(m.ok(), why(m));
  for (const char* line :
       {"memosd_cluster_owner 1\n",
        "memosd_blob_bucket_transfers_total{direction=\"fetch\",result=\"ok\"} 1\n",
        "memosd_blob_bucket_transfers_total{direction=\"fetch\",result=\"failed\"} 0\n",
        "memosd_cluster_stopped 0\n"}) {
    BOOST_TEST(m->find(line) != std::string::npos, line << " in\n" << *m);
  }
  auto states = c2->kv_list("maya");
  BOOST_REQUIRE_MESSAGE(states.ok() && states->size() == 1u, why(states));
  const std::string bytes = "memosd_blob_bucket_bytes_total{direction=\"fetch\"} " +
                            std::to_string(states->front().bytes) + "\n";
  BOOST_TEST(m->find(bytes) != std::string::npos, bytes << " in\n" << *m);
}
