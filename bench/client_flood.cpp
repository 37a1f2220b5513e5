// client-flood: memosd under a flood of hostile clients (issue 13, Faults,
// "Clients"): what memory it holds and what the other clients' latency
// becomes. See README.md.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"
#include "tests/support/raw_connection.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::testing::ChildAs;
using memos::testing::RawConnection;
using memos::testing::RawResponse;

struct Options {
  std::string memosd;
  std::uint64_t idle = 10000;  // idle connections held, across the uids
  std::uint64_t uids = 4;      // as root; otherwise every client is this uid
  std::uint64_t never_readers = 16;
  std::uint64_t slow = 16;  // byte-at-a-time senders
  std::uint64_t seconds = 10;
};

constexpr std::uint32_t kFirstUid = 52000;  // flooders; the victim is kFirstUid - 1
constexpr std::size_t kMaxMessage = 16u << 20;

double rss_mb(pid_t pid) {
  return static_cast<double>(memos::testing::resident_kib(pid)) / 1024.0;
}

// Opens `n` connections to `socket` and checks each is served; returns
// "held=H refused=R" where R counts connections refused past the cap (one
// more is tried after the last).
std::string hold_idle(const std::string& socket, std::uint64_t n,
                      std::vector<RawConnection>& held) {
  std::uint64_t refused = 0;
  for (std::uint64_t i = 0; i <= n; ++i) {
    RawConnection c(socket);
    if (!c.connected()) return "connect failed after " + std::to_string(held.size());
    if (!c.send_all(memos::testing::cube_list_frame(1))) break;
    RawResponse r = c.read_response(std::chrono::seconds(30));
    if (!r.received || r.is_error) {
      ++refused;
      if (i < n) return "refused after " + std::to_string(held.size()) + ": " + r.message;
      continue;
    }
    if (i < n) held.push_back(std::move(c));
  }
  return "held=" + std::to_string(held.size()) + " refused=" + std::to_string(refused);
}

// The hostile mix, for `seconds`: clients that never read, byte-at-a-time
// senders, maximum-size frames in a loop, connection churn. Returns counts.
std::string attack(const std::string& socket, const Options& o) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> never_read_drops{0}, slow_drops{0}, max_frames{0}, churned{0};
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < o.never_readers; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        RawConnection c(socket);
        int small = 4096;
        ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        std::uint64_t id = 0;
        while (!stop) {
          auto f = memos::testing::cube_list_frame(++id);
          ssize_t n = c.send_some(f.data(), f.size());
          if (n < 0) break;  // dropped
          if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (!stop) ++never_read_drops;
      }
    });
  }
  for (std::uint64_t t = 0; t < o.slow; ++t) {
    threads.emplace_back([&] {
      auto frame = memos::testing::request_frame(
          1, [](memos::wire::Request::Builder r) { r.initCubeCreate().setName("slowloris"); });
      while (!stop) {
        RawConnection c(socket);
        bool dropped = false;
        for (std::size_t i = 0; !stop && !dropped; i = (i + 1) % frame.size()) {
          dropped = !c.send_all(&frame[i], 1);
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          pollfd p{c.fd(), POLLIN, 0};
          if (::poll(&p, 1, 0) > 0) dropped = true;  // the refusal arrived
        }
        if (dropped) ++slow_drops;
      }
    });
  }
  threads.emplace_back([&] {
    auto frame = memos::testing::request_frame(1, [](memos::wire::Request::Builder r) {
      r.initCubeCreate().setName(std::string(kMaxMessage - 1024, 'n'));
    });
    auto c = std::make_unique<RawConnection>(socket);
    while (!stop) {
      if (!c->send_all(frame) || !c->read_response(std::chrono::seconds(30)).received) {
        c = std::make_unique<RawConnection>(socket);
        continue;
      }
      ++max_frames;
    }
  });
  threads.emplace_back([&] {
    while (!stop) {
      RawConnection c(socket);
      if (c.send_all(memos::testing::cube_list_frame(1))) c.read_response(std::chrono::seconds(5));
      ++churned;
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return "never_reader_drops=" + std::to_string(never_read_drops) +
         " slow_drops=" + std::to_string(slow_drops) + " max_frames=" + std::to_string(max_frames) +
         " churn=" + std::to_string(churned);
}

// Another user's searches and adds, one at a time, for `seconds`: "search
// p50 p99 add p50 p99 count" in microseconds.
std::string victim(const std::string& socket, std::uint64_t seconds) {
  auto connected = memos::Client::connect(socket);
  if (!connected.ok()) return "victim cannot connect: " + connected.error().message;
  auto& c = *connected.value();
  if (!c.cube_create("victim").ok() && !c.cube_show("victim").ok()) return "no victim cube";
  std::vector<double> searches, adds;
  auto end = Clock::now() + std::chrono::seconds(seconds);
  std::uint64_t n = 0;
  while (Clock::now() < end) {
    auto t0 = Clock::now();
    auto a = c.add("victim", {"a memory about the garden number " + std::to_string(++n)});
    if (!a.ok()) return "add failed: " + a.error().message;
    adds.push_back(memos::bench::seconds_since(t0) * 1e6);
    t0 = Clock::now();
    auto s = c.search("victim", "garden memory", {10});
    if (!s.ok()) return "search failed: " + s.error().message;
    searches.push_back(memos::bench::seconds_since(t0) * 1e6);
  }
  auto ss = memos::bench::summarize(searches);
  auto as = memos::bench::summarize(adds);
  std::ostringstream out;
  out << ss.p50 << ' ' << ss.p99 << ' ' << as.p50 << ' ' << as.p99 << ' ' << searches.size();
  return out.str();
}

// Runs `body` as uid `uid` when root (a child that holds what it opened
// until released), else in a child as this uid.
std::unique_ptr<ChildAs> as_user(std::uint32_t uid, std::function<std::string()> body) {
  return std::make_unique<ChildAs>(::geteuid() == 0 ? uid : ::geteuid(), std::move(body));
}

std::uint64_t field(const std::string& text, const std::string& key) {
  auto at = text.find(key + "=");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in '" + text + "'");
  return std::stoull(text.substr(at + key.size() + 1));
}

void emit_latency(JsonLine& line, const std::string& prefix, const std::string& report) {
  std::istringstream in(report);
  double sp50 = 0, sp99 = 0, ap50 = 0, ap99 = 0;
  std::uint64_t n = 0;
  if (!(in >> sp50 >> sp99 >> ap50 >> ap99 >> n)) throw std::runtime_error(report);
  line.num(prefix + "search_p50_us", sp50, 0)
      .num(prefix + "search_p99_us", sp99, 0)
      .num(prefix + "add_p50_us", ap50, 0)
      .num(prefix + "add_p99_us", ap99, 0)
      .count(prefix + "rounds", n);
}

void run(const Options& o) {
  bool root = ::geteuid() == 0;
  std::uint64_t uids = root ? o.uids : 1;
  std::uint64_t per_uid = (o.idle + uids - 1) / uids;
  memos::testing::TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  std::string conf = dir.path() + "/memosd.conf";
  // Caps sized so the flood's idle connections fit and one more per uid is
  // refused; timeouts as shipped but shorter, so drops show within the run.
  std::ofstream(conf) << "[ipc]\nmax_connections = " << o.idle + 64 + o.never_readers + o.slow
                      << "\nmax_connections_per_uid = " << per_uid + (root ? 0 : 64)
                      << "\nslow_client_timeout_ms = 2000\nframe_timeout_ms = 2000\n";
  memos::testing::MemosdProcess daemon(o.memosd, dir.path(), {"--config", conf});
  memos::bench::start_daemon(daemon, o.memosd);
  pid_t pid = daemon.pid();
  std::string socket = daemon.socket();
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
  std::string daemon_files;
  for (std::string line; std::getline(limits, line);) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream words(line.substr(14));
      words >> daemon_files;
    }
  }
  double rss_start = rss_mb(pid);

  std::string baseline =
      as_user(kFirstUid - 1, [&] { return victim(socket, o.seconds); })->report();

  // The idle flood: per_uid connections from each uid, and one more refused.
  std::vector<std::unique_ptr<ChildAs>> holders;
  auto t0 = Clock::now();
  for (std::uint64_t u = 0; u < uids; ++u) {
    holders.push_back(as_user(kFirstUid + static_cast<std::uint32_t>(u), [&socket, per_uid] {
      static std::vector<RawConnection> held;
      return hold_idle(socket, per_uid, held);
    }));
  }
  std::uint64_t held = 0, refused = 0;
  for (auto& h : holders) {
    std::string r = h->report();
    if (r.rfind("held=", 0) != 0) throw std::runtime_error("idle flood: " + r);
    held += field(r, "held");
    refused += field(r, "refused");
  }
  double idle_seconds = memos::bench::seconds_since(t0);
  double rss_idle = rss_mb(pid);

  // The hostile mix as one more uid, the victim as another, RSS sampled.
  std::atomic<bool> sampling{true};
  double rss_peak = rss_idle;
  std::thread sampler([&] {
    while (sampling) {
      rss_peak = std::max(rss_peak, rss_mb(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto attacker = as_user(kFirstUid + static_cast<std::uint32_t>(uids),
                          [&socket, &o] { return attack(socket, o); });
  std::string flooded = as_user(kFirstUid - 1, [&] { return victim(socket, o.seconds); })->report();
  std::string attacks = attacker->report();
  attacker.reset();
  sampling = false;
  sampler.join();
  double rss_flood_end = rss_mb(pid);
  holders.clear();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double rss_end = rss_mb(pid);
  bool admin_served = memos::Client::connect(socket).ok();

  JsonLine line;
  line.str("bench", "client-flood")
      .count("idle_connections", held)
      .count("uids", uids)
      .count("refused_past_cap", refused)
      .num("idle_connect_s", idle_seconds, 2)
      .str("daemon_max_open_files", daemon_files)
      .count("bench_max_open_files", files.rlim_cur)
      .count("never_readers", o.never_readers)
      .count("byte_at_a_time", o.slow)
      .count("never_reader_drops", field(attacks, "never_reader_drops"))
      .count("slow_drops", field(attacks, "slow_drops"))
      .count("max_frames", field(attacks, "max_frames"))
      .count("churn_connections", field(attacks, "churn"))
      .count("seconds", o.seconds)
      .num("rss_start_mb", rss_start, 1)
      .num("rss_idle_mb", rss_idle, 1)
      .num("rss_peak_mb", rss_peak, 1)
      .num("rss_flood_end_mb", rss_flood_end, 1)
      .num("rss_after_mb", rss_end, 1);
  emit_latency(line, "baseline_", baseline);
  emit_latency(line, "flood_", flooded);
  line.boolean("admin_served", admin_served);
  line.print();
  memos::bench::stop_daemon(daemon);
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: bench-client-flood --memosd PATH [--idle N] [--uids U] [--never-readers R]\n"
      "                          [--slow S] [--seconds T]\n";
  return memos::bench::bench_main(
      "client-flood", usage, argc, argv,
      [&](int c, char** v) {
        Options o;
        memos::bench::read_options(c, v, usage, [&](std::string_view flag, std::string_view value) {
          if (flag == "--memosd") {
            o.memosd = value;
          } else if (flag == "--idle") {
            o.idle = memos::bench::parse_positive(flag, value);
          } else if (flag == "--uids") {
            o.uids = memos::bench::parse_positive(flag, value);
          } else if (flag == "--never-readers") {
            o.never_readers = memos::bench::parse_unsigned(flag, value);
          } else if (flag == "--slow") {
            o.slow = memos::bench::parse_unsigned(flag, value);
          } else if (flag == "--seconds") {
            o.seconds = memos::bench::parse_positive(flag, value);
          } else {
            return false;
          }
          return true;
        });
        if (o.memosd.empty()) throw memos::bench::UsageError("--memosd is required");
        return o;
      },
      run);
}
