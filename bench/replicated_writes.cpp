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
// shard is measured. With --shards S (above 1) the owner owns S shards and
// writer w writes a cube of a tenant of shard w mod S: a turn of the writer
// then commits and appends one group per shard it holds writes of, one after
// another — what several tenants writing at once cost an owner of several
// shards, against one shard (log-r3 at S = 1, same run).
//
// The engines are real nats-server and etcd processes on 127.0.0.1, all on
// this machine, so the network's own delay is not in the figures.
#include <atomic>
#include <mutex>
#include <thread>

#include "bench/bench_util.h"
#include "cluster/shard_replica.h"
#include "memcube/shard.h"
#include "tests/support/engine_servers.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::UsageError;
using namespace memos::cluster;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: bench-replicated-writes [--seconds S] [--writers W1,W2,...] [--lease-ms MS]\n"
    "                               [--shards S]\n";

struct Options {
  double seconds = 3;
  std::vector<std::size_t> writers = {1, 16};
  std::uint64_t lease_ms = 1500;
  std::uint32_t shards = 1;
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
        } else if (flag == "--shards") {
          const std::uint64_t shards = memos::bench::parse_positive(flag, value);
          if (shards > 4096) throw UsageError("--shards: at most 4096");
          opts.shards = static_cast<std::uint32_t>(shards);
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

// A node: a store, its writer and, with engines, its replica of each shard.
struct Node {
  memos::testing::TempDir dir;
  std::unique_ptr<memos::store::Store> store;
  std::unique_ptr<memos::store::CommitQueue> commits;
  std::unique_ptr<NatsConnection> nats;
  std::unique_ptr<EtcdClient> etcd;
  std::vector<std::unique_ptr<ShardReplica>> replicas;  // [shard]

  Node(const std::string& name, const memos::testing::NatsServers* nats_servers,
       const memos::testing::EtcdServers* etcd_servers, int log_replicas,
       std::chrono::milliseconds lease, std::uint32_t shards = 1,
       const std::string& cluster = "bench") {
    Status s;
    memos::store::StoreOptions store_options;
    store_options.shards = shards;
    store = memos::store::Store::open(dir.path(), store_options, &s);
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
    settings.cluster = cluster;
    settings.node = name;
    settings.replicas = log_replicas;
    settings.lease = lease;
    for (std::uint32_t shard = 0; shard < shards; ++shard) {
      settings.shard = shard;
      replicas.push_back(std::make_unique<ShardReplica>(settings, *store, *commits, *nats, *etcd));
    }
    commits->set_change_sink([this](std::vector<memos::store::SunkGroup>& groups) {
      std::vector<memos::cluster::ShardReplica*> each;
      for (auto& r : replicas) each.push_back(r.get());
      memos::cluster::sink_groups(each, groups);
    });
    for (auto& replica : replicas) {
      wait_for([&] { return (s = replica->start()).code != Errc::unavailable; },
               "starting the log");
      require(s, "starting the log");
    }
  }
  ~Node() {
    for (auto& replica : replicas) replica->stop(false);
    commits.reset();
  }

  bool owns_every_shard() const {
    for (const auto& replica : replicas) {
      if (!replica->owner()) return false;
    }
    return true;
  }

  Status write(std::function<Status(memos::store::WriteTxn&)> apply, std::uint32_t shard = 0) {
    return commits->submit_and_wait({.apply = std::move(apply), .done = {}, .shard = shard});
  }
};

// The first uid from 1000 up whose tenant lives in `shard` of `shards`.
memos::store::TenantId tenant_of_shard(std::uint32_t shard, std::uint32_t shards) {
  memos::store::TenantId uid = 1000;
  while (memos::store::shard_of(uid, shards) != shard) ++uid;
  return uid;
}

// `writers` threads adding items for `seconds`: the acknowledged adds per
// second and their latencies. Writer w writes a cube of shard w mod S.
void measure(Node& node, std::string_view mode, std::size_t writers, double seconds) {
  const auto shards = static_cast<std::uint32_t>(node.replicas.empty() ? 1 : node.replicas.size());
  std::vector<memos::store::Cube> cubes(std::min<std::size_t>(writers, shards));
  for (std::uint32_t shard = 0; shard < cubes.size(); ++shard) {
    const std::string name = "w" + std::to_string(writers) + "-" + std::to_string(shard);
    const memos::store::TenantId owner = tenant_of_shard(shard, shards);
    require(node.write(
                [&](memos::store::WriteTxn& t) {
                  return t.create_cube(owner, name, "hash-v1", 16, 1, &cubes[shard]);
                },
                shard),
            "creating a cube");
  }
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
        const auto shard = static_cast<std::uint32_t>(w % cubes.size());
        const memos::store::Cube& cube = cubes[shard];
        draft.provenance.writer = cube.owner;
        const auto began = Clock::now();
        memos::store::Item out;
        Status s = node.write(
            [&](memos::store::WriteTxn& t) {
              return t.add_item(cube.id, draft, 0, cube.owner, &out);
            },
            shard);
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
      .count("shards", shards)
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
    {
      Node owner("a", &nats, &etcd, replicas, lease);
      ShardReplica& replica = *owner.replicas.front();
      wait_for([&] { return replica.owner(); }, "claiming the shard");
      const std::string mode = "log-r" + std::to_string(replicas);
      for (std::size_t w : opts.writers) measure(owner, mode, w, opts.seconds);
      if (replicas != 3) continue;
      // Failover: a follower catches up, the owner stops as a crash would.
      Node follower("b", &nats, &etcd, replicas, lease);
      ShardReplica& following = *follower.replicas.front();
      const auto position = replica.state().position;
      if (!following.wait_position(position, 60s)) {
        throw std::runtime_error("the follower did not catch up");
      }
      const auto died = Clock::now();
      replica.stop(false);
      wait_for([&] { return following.owner(); }, "failover");
      JsonLine()
          .str("bench", "replicated-writes")
          .str("mode", "failover")
          .count("lease_ms", opts.lease_ms)
          .count("records_followed", position)
          .num("failover_ms",
               std::chrono::duration<double, std::milli>(Clock::now() - died).count())
          .print();
    }
    if (opts.shards > 1) {
      // A cluster of its own (its stream, subjects and leases), same engines.
      Node owner("s", &nats, &etcd, replicas, lease, opts.shards, "bench-shards");
      wait_for([&] { return owner.owns_every_shard(); }, "claiming the shards");
      const std::string mode = "log-r3-s" + std::to_string(opts.shards);
      for (std::size_t w : opts.writers) measure(owner, mode, w, opts.seconds);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-replicated-writes", kUsage, argc, argv, parse_options,
                                  run);
}
