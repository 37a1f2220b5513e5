// tenant_fairness.cpp — bench-tenant-fairness: whether one tenant's flood
// starves another's searches.
//
// Tenant A (one uid) floods memosd with 64 connections, each pipelining
// adds and searches; tenant B (another uid) runs one connection of blocking
// searches. B's search latency is measured alone and under A's flood, and
// A's throughput alone and beside B, with the worker pool serving tenants
// by weighted fair queueing (fair_scheduling = true, the default) and in
// arrival order (false). Aim (issue 16): B's p99 under the flood within 3x
// of B alone, with A keeping at least half of its throughput.
//
// Tenants are uids as the kernel reports them, so the two clients are
// child processes of two uids: the benchmark needs root, and says so in its
// JSON line otherwise. One JSON line per mode on stdout.
// Usage: see kUsage.

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "memos/client.h"
#include "tests/support/child_as.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::parse_positive;
using memos::bench::read_options;
using memos::bench::seconds_since;
using memos::bench::start_daemon;
using memos::bench::stop_daemon;
using memos::bench::summarize;
using memos::testing::ChildAs;

constexpr std::string_view kUsage =
    "usage: bench-tenant-fairness --memosd PATH [--seconds S] [--connections C] [--pipeline P]\n"
    "                             [--items N]\n";

constexpr std::uint32_t kUidA = 42451;
constexpr std::uint32_t kUidB = 42452;

struct Options {
  std::string memosd;
  std::size_t seconds = 5;       // each measured phase
  std::size_t connections = 64;  // A's
  std::size_t pipeline = 8;      // requests in flight per A connection
  std::size_t items = 2000;      // in each tenant's cube before the phases
};

Options parse(int argc, char** argv) {
  Options o;
  read_options(argc, argv, kUsage, [&](std::string_view flag, std::string_view value) {
    if (flag == "--memosd") {
      o.memosd = value;
    } else if (flag == "--seconds") {
      o.seconds = parse_positive(flag, value);
    } else if (flag == "--connections") {
      o.connections = parse_positive(flag, value);
    } else if (flag == "--pipeline") {
      o.pipeline = parse_positive(flag, value);
    } else if (flag == "--items") {
      o.items = parse_positive(flag, value);
    } else {
      return false;
    }
    return true;
  });
  if (o.memosd.empty()) throw memos::bench::UsageError("--memosd is required");
  return o;
}

std::string text(std::string_view who, std::size_t i) {
  static const char* const words[] = {"river", "garden", "lamp",  "violin", "harbor", "pepper",
                                      "train", "cloud",  "stone", "letter", "forest", "window"};
  std::ostringstream s;
  s << who << " note " << i << ": " << words[i % 12] << " " << words[(i / 12) % 12] << " "
    << words[(i * 7) % 12];
  return s.str();
}

// Fills `cube` with `items` notes (pipelined). Returns "" or what failed.
std::string fill(memos::Client& c, const std::string& cube, std::size_t items) {
  if (auto r = c.cube_create(cube); !r.ok()) return "cube_create: " + r.error().message;
  std::deque<std::future<memos::Result<memos::Item>>> pending;
  for (std::size_t i = 0; i < items; ++i) {
    memos::NewItem item{text(cube, i)};
    item.allow_duplicate = true;
    pending.push_back(c.add_async(cube, std::move(item)));
    if (pending.size() >= 256 || i + 1 == items) {
      while (!pending.empty()) {
        auto r = pending.front().get();
        pending.pop_front();
        if (!r.ok()) return "add: " + r.error().message;
      }
    }
  }
  return "";
}

// B: blocking searches for `seconds`, after `delay`; reports "p50 p99 n"
// in microseconds.
std::string b_searches(const std::string& socket, double delay, double seconds) {
  auto c = memos::Client::connect(socket);
  if (!c.ok()) return "error: connect: " + c.error().message;
  std::this_thread::sleep_for(std::chrono::duration<double>(delay));
  std::vector<double> us;
  auto start = Clock::now();
  std::size_t i = 0;
  while (seconds_since(start) < seconds) {
    auto t0 = Clock::now();
    auto r = c.value()->search("b", text("b", i++ * 37), {10});
    if (!r.ok()) return "error: search: " + r.error().message;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  auto s = summarize(us);
  std::ostringstream out;
  out << s.p50 << " " << s.p99 << " " << us.size();
  return out.str();
}

// A: `connections` clients pipelining adds and searches for `seconds`;
// reports the operations completed per second.
std::string a_flood(const std::string& socket, const Options& o, double seconds) {
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::string why;
  std::mutex mu;
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (std::size_t t = 0; t < o.connections; ++t) {
    threads.emplace_back([&, t] {
      auto c = memos::Client::connect(socket);
      if (!c.ok()) {
        failed = true;
        std::lock_guard lock(mu);
        why = c.error().message;
        return;
      }
      memos::Client& client = *c.value();
      std::deque<std::future<memos::Result<memos::Item>>> adds;
      std::deque<std::future<memos::Result<std::vector<memos::Hit>>>> searches;
      for (std::size_t i = 0; seconds_since(start) < seconds && !failed; ++i) {
        if (i % 2 == 0) {
          memos::NewItem item{text("a" + std::to_string(t), 1000000 + i)};
          item.allow_duplicate = true;
          adds.push_back(client.add_async("a", std::move(item)));
        } else {
          searches.push_back(client.search_async("a", text("a", i), {10}));
        }
        auto settle = [&](auto& q) {
          auto r = q.front().get();
          q.pop_front();
          if (!r.ok()) {
            failed = true;
            std::lock_guard lock(mu);
            why = r.error().message;
          }
          ++done;
        };
        while (adds.size() + searches.size() >= o.pipeline) {
          if (adds.size() >= searches.size()) {
            settle(adds);
          } else {
            settle(searches);
          }
        }
      }
      while (!adds.empty()) adds.front().get(), adds.pop_front(), ++done;
      while (!searches.empty()) searches.front().get(), searches.pop_front(), ++done;
    });
  }
  for (auto& t : threads) t.join();
  if (failed) return "error: " + why;
  return std::to_string(static_cast<double>(done.load()) / seconds_since(start));
}

double field(const std::string& report, int n) {
  std::istringstream in(report);
  double v = 0;
  for (int i = 0; i <= n; ++i) in >> v;
  return v;
}

void require(const std::string& report, const char* who) {
  if (report.rfind("error", 0) == 0 || report.empty()) {
    throw std::runtime_error(std::string(who) + ": " + report);
  }
}

void run_mode(const Options& o, bool fair) {
  memos::testing::TempDir dir;
  ::chmod(dir.path().c_str(), 0755);  // both uids reach the socket
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "fair_scheduling = " << (fair ? "true" : "false") << "\n";
  memos::testing::MemosdProcess daemon(o.memosd, dir.path(), {"--config", conf});
  start_daemon(daemon, o.memosd);
  const std::string socket = daemon.socket();
  const double secs = static_cast<double>(o.seconds);

  auto fill_as = [&](std::uint32_t uid, const std::string& cube) {
    std::string r = memos::testing::as_uid(uid, [&] {
      auto c = memos::Client::connect(socket);
      return c.ok() ? fill(*c.value(), cube, o.items) : "connect: " + c.error().message;
    });
    if (!r.empty()) throw std::runtime_error("filling " + cube + ": " + r);
  };
  fill_as(kUidA, "a");
  fill_as(kUidB, "b");

  std::string b_alone = memos::testing::as_uid(kUidB, [&] { return b_searches(socket, 0, secs); });
  require(b_alone, "B alone");
  std::string a_alone = memos::testing::as_uid(kUidA, [&] { return a_flood(socket, o, secs); });
  require(a_alone, "A alone");
  // Together: A floods for the whole window, B measures its middle.
  ChildAs a(kUidA, [&] { return a_flood(socket, o, secs + 2); });
  ChildAs b(kUidB, [&] { return b_searches(socket, 1, secs); });
  std::string b_flood = b.report(), a_shared = a.report();
  require(b_flood, "B under the flood");
  require(a_shared, "A beside B");
  b.release();
  a.release();
  stop_daemon(daemon);

  double alone_p99 = field(b_alone, 1), flood_p99 = field(b_flood, 1);
  JsonLine()
      .str("bench", "tenant-fairness")
      .boolean("fair_scheduling", fair)
      .count("a_connections", o.connections)
      .count("a_pipeline", o.pipeline)
      .num("b_alone_p50_us", field(b_alone, 0), 0)
      .num("b_alone_p99_us", alone_p99, 0)
      .num("b_flood_p50_us", field(b_flood, 0), 0)
      .num("b_flood_p99_us", flood_p99, 0)
      .num("p99_ratio", alone_p99 > 0 ? flood_p99 / alone_p99 : 0, 2)
      .num("a_alone_ops_per_s", field(a_alone, 0), 0)
      .num("a_ops_per_s", field(a_shared, 0), 0)
      .num("a_share_kept", field(a_alone, 0) > 0 ? field(a_shared, 0) / field(a_alone, 0) : 0, 2)
      .count("b_searches", static_cast<std::uint64_t>(field(b_flood, 2)))
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-tenant-fairness", kUsage, argc, argv, parse,
                                  [](const Options& o) {
                                    if (::geteuid() != 0) {
                                      JsonLine()
                                          .str("bench", "tenant-fairness")
                                          .str("skipped", "needs root: tenants are uids")
                                          .print();
                                      return;
                                    }
                                    run_mode(o, true);
                                    run_mode(o, false);
                                  });
}
