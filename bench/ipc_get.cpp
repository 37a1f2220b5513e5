// ipc_get.cpp — bench-ipc-get: the cost of one small read through memosd,
// against Redis answering a GET over a Unix socket on the same machine.
//
// Starts a real memosd and a redis-server (its own, on a Unix socket in a
// temporary folder, nothing saved), loads the same N values of about B bytes
// into both (memosd items in one cube, Redis string keys), then drives both
// with the same client shapes: one blocking client (status and get for
// memosd, GET for Redis; p50/p99 per call), and C clients, each a thread with
// its own connection keeping P requests in flight (ops/s). memosd goes through
// the C++ SDK (get_async for pipelining), Redis through hiredis
// (redisAppendCommand / redisGetReply). Keys are drawn uniformly at random
// from a seeded generator, the same sequence for both. Results are JSON
// lines on stdout; notes go to stderr. Usage: see kUsage.

#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "bench/synthetic_text.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"

extern char** environ;

namespace {

using memos::bench::check;
using memos::bench::Clock;
using memos::bench::connect_client;
using memos::bench::create_cube;
using memos::bench::JsonLine;
using memos::bench::LatencyStats;
using memos::bench::parse_positive;
using memos::bench::parse_unsigned;
using memos::bench::read_options;
using memos::bench::Rng;
using memos::bench::seconds_since;
using memos::bench::start_daemon;
using memos::bench::stop_daemon;
using memos::bench::summarize;
using memos::bench::UsageError;

constexpr std::string_view kUsage =
    "usage: bench-ipc-get --memosd PATH [--redis-server PATH] [--items N] [--value-bytes B]\n"
    "                     [--calls K] [--clients C] [--inflight P] [--seconds S] [--seed S]\n";

constexpr std::size_t kWarmupCalls = 1000;
constexpr std::size_t kLoadWindow = 256;  // requests in flight while loading

struct Options {
  std::string memosd;
  std::string redis_server = "/usr/bin/redis-server";
  std::size_t items = 10000;
  std::size_t value_bytes = 100;
  std::size_t calls = 20000;  // timed blocking calls of the one client
  std::size_t clients = 32;
  std::size_t inflight = 16;
  double seconds = 3;  // each throughput run
  std::uint64_t seed = 42;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "benchmarks one small read through memosd against Redis's GET",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--redis-server") {
                   opts.redis_server = value;
                 } else if (flag == "--items") {
                   opts.items = parse_positive(flag, value);
                 } else if (flag == "--value-bytes") {
                   opts.value_bytes = parse_positive(flag, value);
                 } else if (flag == "--calls") {
                   opts.calls = parse_positive(flag, value);
                 } else if (flag == "--clients") {
                   opts.clients = parse_positive(flag, value);
                 } else if (flag == "--inflight") {
                   opts.inflight = parse_positive(flag, value);
                 } else if (flag == "--seconds") {
                   opts.seconds = static_cast<double>(parse_positive(flag, value));
                 } else if (flag == "--seed") {
                   opts.seed = parse_unsigned(flag, value);
                 } else {
                   return false;
                 }
                 return true;
               });
  if (opts.memosd.empty()) throw UsageError("--memosd is required");
  return opts;
}

// The i-th value: printable, `bytes` long, different for every i.
std::string make_value(std::size_t i, std::size_t bytes) {
  std::string v = "value " + std::to_string(i) + " ";
  while (v.size() < bytes) v += static_cast<char>('a' + (v.size() * 7 + i) % 26);
  v.resize(bytes);
  return v;
}

void print_line(std::string_view system, std::string_view op, std::size_t clients,
                std::size_t inflight, const LatencyStats& s, double ops_per_s) {
  JsonLine()
      .str("bench", "ipc-get")
      .str("system", system)
      .str("op", op)
      .count("clients", clients)
      .count("inflight", inflight)
      .num("p50_us", s.p50)
      .num("p99_us", s.p99)
      .num("ops_per_s", ops_per_s, 0)
      .print();
}

// ---- the two shapes, the same for both systems ------------------------------

// One blocking client: `call(key index)` per timed call, after a warm-up.
void one_client(std::string_view system, std::string_view op, const Options& opts,
                const std::function<void(std::size_t)>& call) {
  Rng rng(opts.seed);
  for (std::size_t i = 0; i < kWarmupCalls; ++i) call(rng() % opts.items);
  std::vector<double> latencies_us;
  latencies_us.reserve(opts.calls);
  auto start = Clock::now();
  for (std::size_t i = 0; i < opts.calls; ++i) {
    std::size_t key = rng() % opts.items;
    auto t = Clock::now();
    call(key);
    latencies_us.push_back(seconds_since(t) * 1e6);
  }
  double elapsed = seconds_since(start);
  print_line(system, op, 1, 1, summarize(std::move(latencies_us)),
             static_cast<double>(opts.calls) / elapsed);
}

// What one throughput client does: keeps `inflight` requests outstanding
// until `stop`, returning the latencies it saw (send to reply, the replies
// taken oldest first).
using PipelinedClient =
    std::function<std::vector<double>(std::uint64_t seed, const std::atomic<bool>& stop)>;

void many_clients(std::string_view system, std::string_view op, const Options& opts,
                  const std::function<PipelinedClient()>& make_client) {
  std::vector<PipelinedClient> clients;
  for (std::size_t c = 0; c < opts.clients; ++c) clients.push_back(make_client());
  std::atomic<bool> stop{false};
  std::vector<std::future<std::vector<double>>> results;
  auto start = Clock::now();
  for (std::size_t c = 0; c < opts.clients; ++c) {
    results.push_back(
        std::async(std::launch::async, clients[c], opts.seed + 1 + c, std::cref(stop)));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(opts.seconds));
  stop = true;
  std::vector<double> all;
  for (auto& r : results) {
    std::vector<double> l = r.get();
    all.insert(all.end(), l.begin(), l.end());
  }
  double elapsed = seconds_since(start);
  double ops = static_cast<double>(all.size());
  print_line(system, op, opts.clients, opts.inflight, summarize(std::move(all)), ops / elapsed);
}

// ---- memosd -----------------------------------------------------------------

void bench_memosd(const Options& opts) {
  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path());
  start_daemon(daemon, opts.memosd);
  const std::string cube = "bench";
  std::vector<std::uint64_t> ids;
  {
    auto client = connect_client(daemon.socket());
    create_cube(*client, cube);
    std::deque<std::future<memos::Result<memos::Item>>> window;
    auto take = [&] {
      auto r = window.front().get();
      check(r, "add");
      ids.push_back(r.value().id);
      window.pop_front();
    };
    for (std::size_t i = 0; i < opts.items; ++i) {
      if (window.size() >= kLoadWindow) take();
      memos::NewItem item;
      item.text = make_value(i, opts.value_bytes);
      window.push_back(client->add_async(cube, std::move(item)));
    }
    while (!window.empty()) take();
  }
  std::cerr << "bench-ipc-get: memosd loaded " << ids.size() << " items\n";

  {
    auto client = connect_client(daemon.socket());
    one_client("memosd", "status", opts, [&](std::size_t) { check(client->status(), "status"); });
    one_client("memosd", "get", opts,
               [&](std::size_t k) { check(client->get(cube, ids[k]), "get"); });
  }
  many_clients("memosd", "get", opts, [&]() -> PipelinedClient {
    std::shared_ptr<memos::Client> client = connect_client(daemon.socket());
    return [&, client](std::uint64_t seed, const std::atomic<bool>& stop) {
      Rng rng(seed);
      using Call = std::pair<Clock::time_point, std::future<memos::Result<memos::Item>>>;
      std::deque<Call> window;
      std::vector<double> latencies;
      auto send = [&] {
        window.emplace_back(Clock::now(), client->get_async(cube, ids[rng() % ids.size()]));
      };
      while (window.size() < opts.inflight) send();
      while (!stop.load(std::memory_order_relaxed)) {
        check(window.front().second.get(), "get");
        latencies.push_back(seconds_since(window.front().first) * 1e6);
        window.pop_front();
        send();
      }
      while (!window.empty()) {  // drained, not counted
        check(window.front().second.get(), "get");
        window.pop_front();
      }
      return latencies;
    };
  });
  stop_daemon(daemon);
}

// ---- Redis ------------------------------------------------------------------

// A redis-server of our own on a Unix socket in `dir`, nothing persisted;
// SIGTERM and reaped on destruction.
class RedisProcess {
 public:
  RedisProcess(const std::string& binary, const std::string& dir) : socket_(dir + "/redis.sock") {
    std::vector<std::string> args = {binary,
                                     "--port",
                                     "0",
                                     "--unixsocket",
                                     socket_,
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir,
                                     "--daemonize",
                                     "no",
                                     "--logfile",
                                     dir + "/redis.log"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (int rc = posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), environ)) {
      throw std::runtime_error("cannot start " + binary + ": " + std::strerror(rc) +
                               " (scripts/install-deps --bench installs redis-server)");
    }
  }
  ~RedisProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  // A connection, once the server accepts them (it takes a moment to start).
  std::shared_ptr<redisContext> connect() const {
    for (int attempt = 0; attempt < 500; ++attempt) {
      redisContext* c = redisConnectUnix(socket_.c_str());
      if (c && !c->err) return {c, redisFree};
      if (c) redisFree(c);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("redis-server did not accept connections on " + socket_);
  }

 private:
  std::string socket_;
  pid_t pid_ = -1;
};

using ReplyPtr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

ReplyPtr take_reply(redisContext* c, std::string_view what) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK || !r) {
    throw std::runtime_error(std::string(what) + " failed: " + c->errstr);
  }
  ReplyPtr reply(static_cast<redisReply*>(r), freeReplyObject);
  if (reply->type == REDIS_REPLY_ERROR) {
    throw std::runtime_error(std::string(what) + " failed: " + reply->str);
  }
  return reply;
}

void append_get(redisContext* c, const std::string& key) {
  redisAppendCommand(c, "GET %b", key.data(), key.size());
}

void check_value(const ReplyPtr& reply) {
  if (reply->type != REDIS_REPLY_STRING) throw std::runtime_error("GET found no value");
}

void bench_redis(const Options& opts) {
  memos::testing::TempDir dir;
  RedisProcess redis(opts.redis_server, dir.path());
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < opts.items; ++i) keys.push_back("item:" + std::to_string(i));
  {
    auto c = redis.connect();
    std::size_t pending = 0;
    for (std::size_t i = 0; i < opts.items; ++i) {
      std::string value = make_value(i, opts.value_bytes);
      redisAppendCommand(c.get(), "SET %b %b", keys[i].data(), keys[i].size(), value.data(),
                         value.size());
      if (++pending == kLoadWindow) {
        for (; pending > 0; --pending) take_reply(c.get(), "SET");
      }
    }
    for (; pending > 0; --pending) take_reply(c.get(), "SET");
  }
  std::cerr << "bench-ipc-get: redis loaded " << keys.size() << " keys\n";

  {
    auto c = redis.connect();
    one_client("redis", "get", opts, [&](std::size_t k) {
      append_get(c.get(), keys[k]);
      check_value(take_reply(c.get(), "GET"));
    });
  }
  many_clients("redis", "get", opts, [&]() -> PipelinedClient {
    std::shared_ptr<redisContext> c = redis.connect();
    return [&, c](std::uint64_t seed, const std::atomic<bool>& stop) {
      Rng rng(seed);
      std::deque<Clock::time_point> window;  // Redis answers in order
      std::vector<double> latencies;
      auto send = [&] {
        window.push_back(Clock::now());
        append_get(c.get(), keys[rng() % keys.size()]);
      };
      while (window.size() < opts.inflight) send();
      while (!stop.load(std::memory_order_relaxed)) {
        check_value(take_reply(c.get(), "GET"));
        latencies.push_back(seconds_since(window.front()) * 1e6);
        window.pop_front();
        send();
      }
      for (; !window.empty(); window.pop_front()) take_reply(c.get(), "GET");
      return latencies;
    };
  });
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-ipc-get", kUsage, argc, argv, parse_options,
                                  [](const Options& opts) {
                                    bench_memosd(opts);
                                    bench_redis(opts);
                                  });
}
