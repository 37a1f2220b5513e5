// bench-cluster-daemon: cluster mode through memosd itself (memos-cluster(7)),
// clients on the Unix socket as in production:
//   single   — one memosd, no cluster: an add's latency (the baseline);
//   owner    — the owner of a two-node cluster on a JetStream log of
//              `--replicas` (1: one server; 3: a three-server cluster): the
//              same adds, each appended to the log before it commits;
//   follower — after each acknowledged add, how long until the follower's
//              get returns it (the replication lag a reader of a follower
//              sees), and at the end until a fresh search there finds them all;
//   failover — kill -9 of the owner, until the follower accepts an add.
//
// The engines are real nats-server and etcd processes on 127.0.0.1, all on
// this machine, so the network's own delay is not in the figures.
#include <fstream>
#include <thread>

#include "bench/bench_util.h"
#include "tests/support/engine_servers.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: bench-cluster-daemon [--adds N] [--replicas 1|3] [--lease-ms MS] [--memosd PATH]\n";

struct Options {
  std::string memosd = "build/kernel/memosd";
  std::size_t adds = 300;
  std::size_t replicas = 3;
  std::uint64_t lease_ms = 1500;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  memos::bench::read_options(argc, argv, "benchmarks memosd's cluster mode against one memosd",
                             [&](std::string_view flag, std::string_view value) {
                               if (flag == "--memosd") {
                                 opts.memosd = std::string(value);
                               } else if (flag == "--adds") {
                                 opts.adds = memos::bench::parse_positive(flag, value);
                               } else if (flag == "--replicas") {
                                 opts.replicas = memos::bench::parse_positive(flag, value);
                                 if (opts.replicas != 1 && opts.replicas != 3)
                                   throw memos::bench::UsageError("--replicas must be 1 or 3");
                               } else if (flag == "--lease-ms") {
                                 opts.lease_ms = memos::bench::parse_positive(flag, value);
                               } else {
                                 return false;
                               }
                               return true;
                             });
  return opts;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Retries `attempt` (an add, a cube creation) while the node does not own
// the store yet; throws after 30 s.
template <class Attempt>
auto when_owner(Attempt attempt, const MemosdProcess& node) {
  const auto deadline = Clock::now() + 30s;
  for (;;) {
    auto r = attempt();
    if (r.ok()) return r;
    if (r.error().code != memos::ErrorCode::unavailable || Clock::now() > deadline) {
      throw std::runtime_error("not accepted: " + r.error().message + "\n" + node.log());
    }
    std::this_thread::sleep_for(20ms);
  }
}

memos::NewItem memory(std::size_t i) {
  memos::NewItem item;
  item.text = "benchmark memory number " + std::to_string(i) + " about lighthouses";
  return item;
}

// Sequential adds: each one's latency, in ms; `after` runs after each ack.
std::vector<double> timed_adds(memos::Client& c, std::size_t count, std::size_t first,
                               const std::function<void(const memos::Item&)>& after) {
  std::vector<double> latencies;
  for (std::size_t i = 0; i < count; ++i) {
    const auto sent = Clock::now();
    auto added = c.add("c", memory(first + i));
    memos::bench::check(added, "add");
    latencies.push_back(ms_since(sent));
    if (after) after(*added);
  }
  return latencies;
}

void print_adds(const std::string& mode, const std::vector<double>& latencies) {
  const auto stats = memos::bench::summarize(latencies);
  JsonLine()
      .str("bench", "cluster-daemon")
      .str("mode", mode)
      .count("adds", latencies.size())
      .num("p50_ms", stats.p50)
      .num("p99_ms", stats.p99)
      .num("mean_ms", stats.mean)
      .print();
}

struct ClusterNode {
  TempDir dir;
  std::unique_ptr<MemosdProcess> process;
  ClusterNode(const Options& opts, const std::string& name, const memos::testing::NatsServers& nats,
              const memos::testing::EtcdServers& etcd) {
    const std::string conf = dir.path() + "/memosd.conf";
    std::ofstream out(conf);
    out << "[cluster]\nenabled = true\nname = \"bench\"\nnode_id = \"" << name << "\"\nnats = [";
    for (int i = 0; i < nats.size(); ++i) out << (i ? ", " : "") << '"' << nats.url(i) << '"';
    out << "]\netcd = [\"" << etcd.url(0) << "\"]\nreplicas = " << opts.replicas
        << "\nlease_ms = " << opts.lease_ms << "\n";
    out.close();
    process = std::make_unique<MemosdProcess>(opts.memosd, dir.path(),
                                              std::vector<std::string>{"--config", conf});
    memos::bench::start_daemon(*process, opts.memosd, 60s);
  }
};

void run(const Options& opts) {
  {
    TempDir dir;
    MemosdProcess single(opts.memosd, dir.path());
    memos::bench::start_daemon(single, opts.memosd);
    auto c = memos::bench::connect_client(single.socket());
    memos::bench::create_cube(*c, "c");
    print_adds("single", timed_adds(*c, opts.adds, 0, nullptr));
    c.reset();
    memos::bench::stop_daemon(single);
  }
  memos::testing::NatsServers nats(static_cast<int>(opts.replicas));
  memos::testing::EtcdServers etcd(1);
  if (!nats.start()) throw std::runtime_error("nats-server did not start: " + nats.log(0));
  if (!etcd.start()) throw std::runtime_error("etcd did not start: " + etcd.log(0));
  ClusterNode a(opts, "a", nats, etcd);
  auto owner = memos::bench::connect_client(a.process->socket());
  when_owner([&] { return owner->cube_create("c"); }, *a.process);
  ClusterNode b(opts, "b", nats, etcd);
  auto follower = memos::bench::connect_client(b.process->socket());
  // The follower has the cube once it has applied its creation.
  const auto deadline = Clock::now() + 30s;
  while (!follower->cube_show("c").ok()) {
    if (Clock::now() > deadline) throw std::runtime_error("the follower never saw the cube");
    std::this_thread::sleep_for(10ms);
  }
  std::vector<double> lag;
  const auto adds = timed_adds(*owner, opts.adds, 0, [&](const memos::Item& item) {
    const auto acked = Clock::now();
    while (!follower->get("c", item.id).ok()) {
      if (Clock::now() - acked > 30s) throw std::runtime_error("the follower never got an add");
    }
    lag.push_back(ms_since(acked));
  });
  print_adds("owner-r" + std::to_string(opts.replicas), adds);
  // Every add searchable on the follower: a fresh search there waits for
  // what it has applied to be indexed.
  const auto searching = Clock::now();
  memos::SearchOptions fresh;
  fresh.fresh = true;
  fresh.k = opts.adds;
  fresh.mode = memos::SearchMode::lexical;
  std::size_t found = 0;
  while (found < opts.adds) {
    auto hits = follower->search("c", "lighthouses", fresh);
    memos::bench::check(hits, "follower search");
    found = hits->size();
    if (Clock::now() - searching > 30s) throw std::runtime_error("follower search incomplete");
  }
  const auto lag_stats = memos::bench::summarize(lag);
  JsonLine()
      .str("bench", "cluster-daemon")
      .str("mode", "follower")
      .count("adds", lag.size())
      .num("get_lag_p50_ms", lag_stats.p50)
      .num("get_lag_p99_ms", lag_stats.p99)
      .num("all_searchable_ms", ms_since(searching))
      .print();
  // kill -9 of the owner: the lease lapses.
  owner.reset();
  a.process->stop(SIGKILL);
  const auto killed = Clock::now();
  when_owner([&] { return follower->add("c", memory(opts.adds)); }, *b.process);
  JsonLine()
      .str("bench", "cluster-daemon")
      .str("mode", "failover")
      .count("lease_ms", opts.lease_ms)
      .num("failover_ms", ms_since(killed))
      .print();
  follower.reset();
  memos::bench::stop_daemon(*b.process);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-cluster-daemon", kUsage, argc, argv, parse_options, run);
}
