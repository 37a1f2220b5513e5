// EIO (issue 13, "Faults"): memosd under a load of adds and updates, with an
// LD_PRELOAD interposer (eio_preload.c) that makes the store's fsync,
// fdatasync or writes fail with EIO once the test creates a trigger file.
// docs/design.md ("Durability contract"): a commit that fails other than for
// space is fatal, and fsync is never retried (after a failed fsync the page
// cache may have dropped the dirty pages, so a retry that succeeds proves
// nothing). So: memosd exits by itself, no client sees a write that failed
// acknowledged, and a restart without the interposer reads back every write
// that was acknowledged, before the fault or after it.
#define BOOST_TEST_MODULE eio
#include <signal.h>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/printing.h"

using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using namespace std::chrono_literals;

namespace {

constexpr int kWriters = 3;
constexpr int kBurst = 8;
// Writes acknowledged before the fault is injected.
constexpr int kAcknowledgedBeforeFault = 150;
// A bound on each writer's writes, should memosd never stop answering.
constexpr int kMaxWritesPerWriter = 20000;

std::string why(const memos::Error& e) {
  return std::string(memos::to_string(e.code)) + ": " + e.message;
}

// What the writers saw, shared between them.
struct Outcomes {
  std::mutex mutex;
  std::map<std::uint64_t, std::vector<std::string>> items;  // id -> acknowledged texts
  std::atomic<int> acknowledged{0};
  int acknowledged_after_fault = 0;
  std::map<std::string, int> errors;  // "code: message" -> count
  // Errors other than the lost connection or internal: a write refused as
  // if it could be retried on a daemon that has lost its disk.
  int unexpected_errors = 0;
};

// One client: pipelined bursts of adds and updates of its own items until
// the connection is lost.
void write_until_lost(const std::string& socket, int index, Outcomes& out,
                      const std::atomic<bool>& fault_on) {
  auto connected = memos::Client::connect(socket);
  if (!connected.ok()) return;
  auto& c = *connected.value();
  std::vector<std::uint64_t> own;
  bool lost = false;
  for (int n = 0; !lost && n < kMaxWritesPerWriter; n += kBurst) {
    struct Sent {
      std::uint64_t id;  // 0: an add
      std::string text;
      std::future<memos::Result<memos::Item>> reply;
    };
    std::vector<Sent> burst;
    for (int i = 0; i < kBurst; ++i) {
      std::string text = "eio writer " + std::to_string(index) + " write " + std::to_string(n + i);
      if (!own.empty() && i % 3 == 2) {
        std::uint64_t id = own[static_cast<std::size_t>(n + i) % own.size()];
        burst.push_back({id, text, c.update_async("eio", id, {text, {}, {}})});
      } else {
        burst.push_back({0, text, c.add_async("eio", {text})});
      }
    }
    // Updates of one item within a burst complete in the order sent (one
    // writer thread commits them in order), so versions stay in order.
    for (auto& sent : burst) {
      auto reply = sent.reply.get();
      std::lock_guard lock(out.mutex);
      if (!reply.ok()) {
        auto code = reply.error().code;
        ++out.errors[why(reply.error())];
        lost = lost || code == memos::ErrorCode::connection_lost;
        if (code != memos::ErrorCode::connection_lost && code != memos::ErrorCode::internal)
          ++out.unexpected_errors;
        continue;
      }
      ++out.acknowledged;
      if (fault_on) ++out.acknowledged_after_fault;
      if (sent.id == 0) own.push_back(reply->id);
      out.items[reply->id].push_back(sent.text);
    }
  }
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Under AddressSanitizer (a sanitize build) the interposer comes before
// ASan's runtime, which ASan refuses unless told; and a fatal exit is no
// clean shutdown, so what it leaves allocated is no leak.
std::string asan_options() {
  const char* inherited = std::getenv("ASAN_OPTIONS");
  return std::string("ASAN_OPTIONS=") + (inherited ? std::string(inherited) + ":" : "") +
         "verify_asan_link_order=0:detect_leaks=0";
}

struct FaultRun {
  int exit_status = 0;
  std::vector<std::string> injections;  // "call path", one per injected EIO
};

// Runs the load under the interposer failing `calls` on files under the
// store's folder, injects the fault, waits for memosd to exit, then restarts
// it without the interposer and reads back every acknowledged write.
FaultRun run_with_fault(const std::string& calls) {
  TempDir dir;
  MemosdProcess daemon(MEMOS_MEMOSD, dir.path());
  std::string trigger = dir.path() + "/trigger", log = dir.path() + "/eio.log";
  daemon.set_extra_env({"LD_PRELOAD=" MEMOS_EIO_PRELOAD, "MEMOS_EIO_TRIGGER=" + trigger,
                        "MEMOS_EIO_PREFIX=" + daemon.data_dir() + "/store/",
                        "MEMOS_EIO_CALLS=" + calls, "MEMOS_EIO_LOG=" + log, asan_options()});
  BOOST_REQUIRE_MESSAGE(daemon.start(), "memosd did not start:\n" << daemon.log());
  {
    auto c = memos::Client::connect(daemon.socket());
    BOOST_REQUIRE(c.ok());
    BOOST_REQUIRE(c.value()->cube_create("eio").ok());
  }

  Outcomes out;
  std::atomic<bool> fault_on{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back(write_until_lost, daemon.socket(), w, std::ref(out), std::cref(fault_on));
  while (out.acknowledged < kAcknowledgedBeforeFault && daemon.running() &&
         daemon.wait_exit(10ms) == -1) {
  }
  BOOST_REQUIRE_MESSAGE(daemon.running(), "memosd exited before the fault:\n" << daemon.log());
  fault_on = true;
  std::ofstream(trigger) << "now\n";
  FaultRun run;
  run.exit_status = daemon.wait_exit(60s);
  for (auto& w : writers) w.join();
  run.injections = lines_of(log);
  BOOST_TEST_MESSAGE(calls << ": memosd exit status " << run.exit_status << ", "
                           << run.injections.size() << " injected EIO, " << out.acknowledged
                           << " writes acknowledged (" << out.acknowledged_after_fault
                           << " after the trigger file appeared)");
  for (const auto& [error, count] : out.errors)
    BOOST_TEST_MESSAGE("  clients saw " << count << " x " << error);

  // memosd exited by itself (wait_exit returns -1 while it still runs), not
  // by a crash signal.
  BOOST_TEST(run.exit_status != -1, "memosd still runs after EIO:\n" << daemon.log());
  BOOST_TEST((run.exit_status > 0 && run.exit_status < 128), "exit status " << run.exit_status
                                                                            << "\n"
                                                                            << daemon.log());
  BOOST_TEST(!run.injections.empty());
  // No client was told a failed write succeeded: what clients saw besides
  // acknowledgements is the lost connection or an internal error.
  BOOST_TEST(out.unexpected_errors == 0);
  if (run.exit_status == -1) daemon.stop(SIGKILL);

  // A restart without the interposer loses nothing acknowledged.
  daemon.set_extra_env({});
  BOOST_REQUIRE_MESSAGE(daemon.start(), "memosd did not restart:\n" << daemon.log());
  auto c = memos::Client::connect(daemon.socket());
  BOOST_REQUIRE(c.ok());
  int lost = 0;
  for (const auto& [id, texts] : out.items) {
    auto history = c.value()->history("eio", id);
    if (!history.ok() || history->size() < texts.size()) {
      ++lost;
      continue;
    }
    for (std::size_t v = 0; v < texts.size(); ++v)
      if ((*history)[v].text != texts[v]) ++lost;
  }
  BOOST_TEST(lost == 0, lost << " acknowledged writes lost or different after the restart");
  BOOST_TEST(daemon.stop() == 0);
  return run;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_failed_fsync_of_the_store_is_fatal_and_never_retried) {
  FaultRun run = run_with_fault("fsync,fdatasync");
  // The first failed sync ends memosd: it is never tried again.
  std::map<std::string, int> per_call;
  for (const auto& line : run.injections) ++per_call[line];
  for (const auto& [line, count] : per_call)
    BOOST_TEST(count == 1, line << " failed " << count << " times: the sync was retried");
}

BOOST_AUTO_TEST_CASE(a_failed_write_of_the_store_is_fatal) {
  run_with_fault("write");
}
