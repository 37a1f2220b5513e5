// bench-cluster-daemon: cluster mode through memosd itself (memos-cluster(7)),
// clients on the Unix socket as in production:
//   single   — one memosd, no cluster: an add's latency (the baseline);
//   owner    — the owner of a two-node cluster on a JetStream log of
//              `--replicas` (1: one server; 3: a three-server cluster): the
//              same adds, each appended to the log before it commits;
//   follower — after each acknowledged add, how long until the follower's
//              get returns it (the replication lag a reader of a follower
//              sees: a get waits to hold every acknowledged write), and at
//              the end until a fresh search there finds them all;
//   reads    — gets of a stored memory, one at a time: on one memosd (the
//              baseline), on the owner (within its lease: at once), on the
//              follower (one question to the log's leader each), on the
//              follower accepting 1 s of staleness (at once), and from
//              `--readers` clients at once on the follower (the reads
//              waiting share one question: reads per question reported);
//   failover — kill -9 of the owner, until the follower accepts an add.
// `--shards N` runs the cluster with cluster.shards = N (the owner claims
// every shard): what several shards cost a read's barrier and an add.
//
// The engines are real nats-server and etcd processes on 127.0.0.1, all on
// this machine, so the network's own delay is not in the figures.
#include <algorithm>
#include <fstream>
#include <thread>

#include "bench/bench_util.h"
#include "tests/support/engine_servers.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::Clock;
using memos::bench::JsonLine;
using memos::bench::metric;
using memos::bench::ms_since;
using memos::testing::MemosdProcess;
using memos::testing::TempDir;
using namespace std::chrono_literals;

constexpr std::string_view kUsage =
    "usage: bench-cluster-daemon [--adds N] [--replicas 1|3] [--lease-ms MS] [--readers R]\n"
    "                            [--shards N] [--memosd PATH]\n";

struct Options {
  std::string memosd = "build/kernel/memosd";
  std::size_t adds = 300;
  std::size_t replicas = 3;
  std::uint64_t lease_ms = 1500;
  std::size_t readers = 8;
  std::size_t shards = 1;
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
                               } else if (flag == "--readers") {
                                 opts.readers = memos::bench::parse_positive(flag, value);
                               } else if (flag == "--shards") {
                                 opts.shards = memos::bench::parse_positive(flag, value);
                                 if (opts.shards > 4096)
                                   throw memos::bench::UsageError("--shards: 1 to 4096");
                               } else {
                                 return false;
                               }
                               return true;
                             });
  return opts;
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

// `count` gets of item `id`, one at a time: each one's latency, in ms.
std::vector<double> timed_gets(memos::Client& c, std::uint64_t id, std::size_t count) {
  std::vector<double> latencies;
  for (std::size_t i = 0; i < count; ++i) {
    const auto sent = Clock::now();
    memos::bench::check(c.get("c", id), "get");
    latencies.push_back(ms_since(sent));
  }
  return latencies;
}

void print_gets(const std::string& where, const std::vector<double>& latencies) {
  const auto stats = memos::bench::summarize(latencies);
  JsonLine()
      .str("bench", "cluster-daemon")
      .str("mode", "reads")
      .str("where", where)
      .count("gets", latencies.size())
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
        << "\nlease_ms = " << opts.lease_ms << "\nshards = " << opts.shards << "\n";
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
    auto stored = c->add("c", memory(0));
    memos::bench::check(stored, "add");
    print_adds("single", timed_adds(*c, opts.adds, 1, nullptr));
    print_gets("single", timed_gets(*c, stored->id, opts.adds));
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
  std::uint64_t stored = 0;
  const auto adds = timed_adds(*owner, opts.adds, 0, [&](const memos::Item& item) {
    stored = item.id;
    const auto acked = Clock::now();
    while (!follower->get("c", item.id).ok()) {
      if (Clock::now() - acked > 30s) throw std::runtime_error("the follower never got an add");
    }
    lag.push_back(ms_since(acked));
  });
  print_adds("owner-r" + std::to_string(opts.replicas) +
                 (opts.shards > 1 ? "-s" + std::to_string(opts.shards) : ""),
             adds);
  // Every add searchable on the follower: a fresh search there waits for
  // what it has applied to be indexed.
  const auto searching = Clock::now();
  memos::SearchOptions fresh;
  fresh.fresh = true;
  // A search returns at most 1000 hits (the protocol's max_k): past that,
  // finding 1000 is all a search can show.
  const std::size_t want = std::min<std::size_t>(opts.adds, 1000);
  fresh.k = static_cast<std::uint32_t>(want);
  fresh.mode = memos::SearchMode::lexical;
  std::size_t found = 0;
  while (found < want) {
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
  // Reads of a stored memory, no write in flight.
  print_gets("owner", timed_gets(*owner, stored, opts.adds));
  print_gets("follower", timed_gets(*follower, stored, opts.adds));
  {
    memos::ClientOptions relaxed;
    relaxed.max_staleness_ms = 1000;
    auto stale = memos::Client::connect(b.process->socket(), relaxed);
    if (!stale.ok()) throw std::runtime_error("connect: " + stale.error().message);
    print_gets("follower-stale-1s", timed_gets(**stale, stored, opts.adds));
  }
  {
    const std::string rounds = "memosd_cluster_read_barriers_total";
    const std::string waited = "memosd_cluster_reads_total{served=\"after_barrier\"}";
    const double rounds_before = metric(*follower, rounds);
    const double waited_before = metric(*follower, waited);
    std::vector<std::vector<double>> each(opts.readers);
    std::vector<std::thread> readers;
    const auto started = Clock::now();
    for (std::size_t r = 0; r < opts.readers; ++r) {
      readers.emplace_back([&, r] {
        auto c = memos::bench::connect_client(b.process->socket());
        each[r] = timed_gets(*c, stored, opts.adds);
      });
    }
    for (auto& t : readers) t.join();
    const double seconds = ms_since(started) / 1000;
    std::vector<double> all;
    for (const auto& e : each) all.insert(all.end(), e.begin(), e.end());
    const auto stats = memos::bench::summarize(all);
    const double asked = metric(*follower, rounds) - rounds_before;
    const double served = metric(*follower, waited) - waited_before;
    JsonLine()
        .str("bench", "cluster-daemon")
        .str("mode", "reads")
        .str("where", "follower-concurrent")
        .count("readers", opts.readers)
        .count("gets", all.size())
        .num("p50_ms", stats.p50)
        .num("p99_ms", stats.p99)
        .num("gets_per_s", static_cast<double>(all.size()) / seconds)
        .num("gets_per_question", asked > 0 ? served / asked : 0)
        .print();
  }
  // Adds through the follower: each forwarded to the owner, and answered
  // once the follower holds it (docs/scale-out.md, "Any node answers").
  print_adds("forwarded-r" + std::to_string(opts.replicas) +
                 (opts.shards > 1 ? "-s" + std::to_string(opts.shards) : ""),
             timed_adds(*follower, opts.adds, opts.adds + 1, nullptr));
  // kill -9 of the owner: the lease lapses.
  owner.reset();
  a.process->stop(SIGKILL);
  const auto killed = Clock::now();
  when_owner([&] { return follower->add("c", memory(opts.adds)); }, *b.process);
  JsonLine()
      .str("bench", "cluster-daemon")
      .str("mode", "failover")
      .count("lease_ms", opts.lease_ms)
      .count("shards", opts.shards)
      .num("failover_ms", ms_since(killed))
      .print();
  follower.reset();
  memos::bench::stop_daemon(*b.process);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-cluster-daemon", kUsage, argc, argv, parse_options, run);
}
