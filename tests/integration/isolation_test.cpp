// A plugin isolated in memos-plugin-host that crashes, aborts, hangs, exits
// and lets exceptions escape: memosd stays up, reports each clearly,
// restarts the host, and quarantines the plugin when it keeps dying.
#define BOOST_TEST_MODULE isolation
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"

using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct IsolatedDaemon {
  TempDir dir;
  std::unique_ptr<MemosdProcess> process;
  std::unique_ptr<memos::Client> client;

  IsolatedDaemon() {
    std::string plugins = dir.path() + "/plugins";
    fs::create_directories(plugins);
    fs::copy_file(std::string(MEMOS_TEST_PLUGIN_DIR) + "/crasher.so", plugins + "/crasher.so");
    std::ofstream(plugins + "/crasher.plugin.toml")
        << "name = \"crasher\"\nkinds = [\"embedder\"]\nabi_major = 1\n"
        << "library = \"crasher.so\"\nisolation = \"isolated\"\n";
    std::ofstream(dir.path() + "/memosd.conf")
        << "[plugins]\npaths = [\"" << plugins << "\", \"" << MEMOS_PLUGIN_DIR
        << "\"]\nembedder = \"crasher\"\n"
        << "call_timeout_ms = 1000\nmax_crashes = 3\ncrash_window_s = 60\n"
        << "[search]\nembedding_dim = 26\n";
    process = std::make_unique<MemosdProcess>(
        MEMOS_MEMOSD, dir.path(),
        std::vector<std::string>{"--config", dir.path() + "/memosd.conf"});
    BOOST_REQUIRE_MESSAGE(process->start(), process->log());
    auto c = memos::Client::connect(process->socket());
    BOOST_REQUIRE(c.ok());
    client = std::move(c.value());
    BOOST_REQUIRE(client->cube_create("c").ok());
  }

  // Adds until the restarted host answers (it restarts after a backoff).
  bool add_normal(const std::string& text) {
    for (int i = 0; i < 100; ++i) {
      if (client->add("c", {text}).ok()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  std::string health() {
    auto p = client->plugin_info("crasher");
    return p.ok() ? p->health : "";
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(each_way_of_dying_costs_only_the_call) {
  IsolatedDaemon d;
  BOOST_REQUIRE(d.add_normal("an ordinary memory"));
  BOOST_TEST(d.health() == "running");
  int round = 0;
  for (const char* trigger : {"segfault", "abort", "exit", "terminate", "hang"}) {
    ++round;
    auto r = d.client->add("c", {std::string("please ") + trigger + " now"});
    BOOST_REQUIRE_MESSAGE(!r.ok(), trigger);
    BOOST_TEST(r.error().code == memos::ErrorCode::unavailable,
               trigger << ": " << r.error().message);
    BOOST_TEST(r.error().retryable);
    BOOST_TEST(d.client->status().ok());  // memosd is up
    if (std::string(trigger) == "exit") {
      // The third death within the window: quarantined.
      BOOST_TEST(d.health().find("quarantined") == 0, d.health());
      auto q = d.client->add("c", {"refused while quarantined"});
      BOOST_REQUIRE(!q.ok());
      BOOST_TEST(q.error().message.find("quarantined") != std::string::npos, q.error().message);
      BOOST_REQUIRE(d.client->plugin_reload("crasher").ok());
      BOOST_TEST(d.health() == "running");
    } else {
      // (The text must not hold a trigger word itself.)
      BOOST_REQUIRE_MESSAGE(d.add_normal("recovered in round " + std::to_string(round)),
                            trigger << "\n"
                                    << d.process->log());
    }
  }
  std::string log = d.process->log();
  // SIGSEGV, or SIGABRT where AddressSanitizer catches the SIGSEGV first.
  BOOST_TEST((log.find("killed by signal 11") != std::string::npos ||
              log.find("killed by signal 6") != std::string::npos),
             log);
  BOOST_TEST(log.find("exited with status 3") != std::string::npos, log);
  BOOST_TEST(log.find("did not answer within") != std::string::npos, log);
  BOOST_TEST(log.find("quarantined") != std::string::npos, log);
  // Everything acknowledged is searchable; the daemon stops cleanly.
  auto hits = d.client->search("c", "ordinary memory", {10});
  BOOST_REQUIRE(hits.ok());
  BOOST_TEST(!hits->empty());
  BOOST_TEST(d.process->stop() == 0);
}

BOOST_AUTO_TEST_CASE(an_isolated_plugin_that_cannot_start_is_a_clear_start_up_error) {
  TempDir dir;
  std::string plugins = dir.path() + "/plugins";
  fs::create_directories(plugins);
  std::ofstream(plugins + "/ghost.plugin.toml")
      << "name = \"ghost\"\nkinds = [\"embedder\"]\nabi_major = 1\n"
      << "library = \"ghost.so\"\nisolation = \"isolated\"\n";
  std::ofstream(dir.path() + "/memosd.conf")
      << "[plugins]\npaths = [\"" << plugins << "\"]\nembedder = \"ghost\"\n";
  std::string out, err;
  int rc = memos::testing::run_command({MEMOS_MEMOSD, "--socket", dir.path() + "/s", "--data",
                                        dir.path() + "/d", "--config", dir.path() + "/memosd.conf"},
                                       &out, &err);
  BOOST_TEST(rc == 1);
  BOOST_TEST(err.find("cannot load") != std::string::npos, err);
}
