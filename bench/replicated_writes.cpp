// bench-replicated-writes: what cluster mode's log costs a write
// (docs/scale-out.md). Concurrent writers add items through the store's
// writer (CommitQueue) on one machine:
//   local   — no log: acknowledged once fsynced (a single node, the baseline);
//   log-r1  — each commit group first appended to a JetStream stream of one
//             replica (the round trip and the server's own write);
//   log-r3  — the same with three replicas in a three-server cluster
//             (acknowledged by a Raft quorum).
// Then the failover: a second node follows, the owner stops without giving
// its lease back (as a crash), and the time until the follower owns the
// shard is measured.
//
// The engines are real nats-server and etcd processes on 127.0.0.1, all on
// this machine, so the network's own delay is not in the figures.
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "bench/bench_util.h"
#include "cluster/shard_replica.h"
#include "tests/support/engine_servers.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::UsageError;
using namespace memos::cluster;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: bench-replicated-writes [--seconds S] [--writers W1,W2,...] [--lease-ms MS]\n";

struct Options {
  double seconds = 3;
  std::vector<std::size_t> writers = {1, 16};
  std::uint64_t lease_ms = 1500;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  memos::bench::read_options(
      argc, argv, "benchmarks writes through cluster mode's replicated log against local ones",
      [&](std::string_view flag, std::string_view value) {
        if (flag == "--memosd") return true;  // scripts/bench passes it; not used here
        if (flag == "--seconds") {
          opts.seconds = memos::bench::parse_seconds(flag, value);
        } else if (flag == "--writers") {
          opts.writers = memos::bench::parse_positive_list(flag, value);
        } else if (flag == "--lease-ms") {
          opts.lease_ms = memos::bench::parse_positive(flag, value);
        } else {
          return false;
        }
        return true;
      });
  return opts;
}

void require(const Status& s, std::string_view what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.message);
}

template <class Condition>
void wait_for(Condition&& condition, std::string_view what) {
  auto deadline = Clock::now() + 30s;
  while (!condition()) {
    if (Clock::now() > deadline) throw std::runtime_error(std::string(what) + ": timed out");
    std::this_thread::sleep_for(5ms);
  }
}

// A node: a store, its writer and, with engines, its replica of shard 0.
struct Node {
  memos::testing::TempDir dir;
  std::unique_ptr<memos::store::Store> store;
  std::unique_ptr<memos::store::CommitQueue> commits;
  std::unique_ptr<NatsConnection> nats;
  std::unique_ptr<EtcdClient> etcd;
  std::unique_ptr<ShardReplica> replica;

  Node(const std::string& name, const memos::testing::NatsServers* nats_servers,
       const memos::testing::EtcdServers* etcd_servers, int replicas,
       std::chrono::milliseconds lease) {
    Status s;
    store = memos::store::Store::open(dir.path(), {}, &s);
    require(s, "opening a store");
    commits = std::make_unique<memos::store::CommitQueue>(
        *store, [](const Status& f) { throw std::runtime_error("commit failed: " + f.message); });
    if (!nats_servers) return;
    NatsOptions options;
    options.servers = nats_servers->urls();
    nats = NatsConnection::connect(options, &s);
    require(s, "connecting to NATS");
    etcd = std::make_unique<EtcdClient>(etcd_servers->urls(), 2s);
    ReplicaSettings settings;
    settings.cluster = "bench";
    settings.node = name;
    settings.replicas = replicas;
    settings.lease = lease;
    replica = std::make_unique<ShardReplica>(settings, *store, *commits, *nats, *etcd);
    commits->set_change_sink([this](memos::store::WriteTxn& txn, const memos::store::ChangeSet& c) {
      return replica->sink(txn, c);
    });
    wait_for([&] { return (s = replica->start()).code != Errc::unavailable; }, "starting the log");
    require(s, "starting the log");
  }
  ~Node() {
    if (replica) replica->stop(false);
    commits.reset();
  }

  Status write(std::function<Status(memos::store::WriteTxn&)> apply) {
    std::promise<Status> done;
    auto answer = done.get_future();
    commits->submit({std::move(apply), [&](const Status& st) { done.set_value(st); }});
    return answer.get();
  }
};

// `writers` threads adding items for `seconds`: the acknowledged adds per
// second and their latencies.
void measure(Node& node, std::string_view mode, std::size_t writers, double seconds) {
  memos::store::Cube cube;
  const std::string name = "w" + std::to_string(writers);
  require(node.write([&](memos::store::WriteTxn& t) {
    return t.create_cube(1000, name, "hash-v1", 16, 1, &cube);
  }),
          "creating a cube");
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::atomic<bool> stop = false;
  std::atomic<std::uint64_t> failures = 0;
  std::string failure;
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (std::size_t w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::vector<double> mine;
      for (std::uint64_t i = 0; !stop; ++i) {
        memos::store::ItemDraft draft;
        draft.text = "writer " + std::to_string(w) + " memory " + std::to_string(i) +
                     ": the quick brown fox jumps over the lazy dog, again and again.";
        draft.provenance.writer = 1000;
        const auto began = Clock::now();
        memos::store::Item out;
        Status s = node.write(
            [&](memos::store::WriteTxn& t) { return t.add_item(cube.id, draft, 0, 1000, &out); });
        if (!s.ok()) {
          ++failures;
          std::lock_guard lock(mutex);
          failure = s.message;
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - began).count());
      }
      std::lock_guard lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = memos::bench::seconds_since(start);
  if (failures) throw std::runtime_error(std::string(mode) + ": a write failed: " + failure);
  const auto stats = memos::bench::summarize(latencies_ms);
  JsonLine()
      .str("bench", "replicated-writes")
      .str("mode", mode)
      .count("writers", writers)
      .count("adds", latencies_ms.size())
      .num("adds_per_s", static_cast<double>(latencies_ms.size()) / elapsed)
      .num("p50_ms", stats.p50)
      .num("p99_ms", stats.p99)
      .num("mean_ms", stats.mean)
      .print();
}

void run(const Options& opts) {
  const auto lease = std::chrono::milliseconds(opts.lease_ms);
  {
    Node local("local", nullptr, nullptr, 0, lease);
    for (std::size_t w : opts.writers) measure(local, "local", w, opts.seconds);
  }
  for (int replicas : {1, 3}) {
    memos::testing::NatsServers nats(replicas);
    memos::testing::EtcdServers etcd(1);
    if (!nats.start()) throw std::runtime_error("nats-server did not start: " + nats.log(0));
    if (!etcd.start()) throw std::runtime_error("etcd did not start: " + etcd.log(0));
    Node owner("a", &nats, &etcd, replicas, lease);
    wait_for([&] { return owner.replica->owner(); }, "claiming the shard");
    const std::string mode = "log-r" + std::to_string(replicas);
    for (std::size_t w : opts.writers) measure(owner, mode, w, opts.seconds);
    if (replicas != 3) continue;
    // Failover: a follower catches up, the owner stops as a crash would.
    Node follower("b", &nats, &etcd, replicas, lease);
    const auto position = owner.replica->state().position;
    if (!follower.replica->wait_position(position, 60s)) {
      throw std::runtime_error("the follower did not catch up");
    }
    const auto died = Clock::now();
    owner.replica->stop(false);
    wait_for([&] { return follower.replica->owner(); }, "failover");
    JsonLine()
        .str("bench", "replicated-writes")
        .str("mode", "failover")
        .count("lease_ms", opts.lease_ms)
        .count("records_followed", position)
        .num("failover_ms", std::chrono::duration<double, std::milli>(Clock::now() - died).count())
        .print();
  }
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-replicated-writes", kUsage, argc, argv, parse_options,
                                  run);
}
