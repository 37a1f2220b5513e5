// bench-cluster-join: how long a node joining a running cluster takes to
// serve searches of what the cluster already holds (docs/scale-out.md,
// "Index snapshots"), through memosd processes on real engines:
//   rebuild — the owner shares no index snapshot (cluster.index_share_s =
//             0): the joining node applies the log, then rebuilds each
//             cube's indexes from its store (the baseline);
//   shared  — the owner shares them: the joining node applies the log, then
//             takes the snapshots and catches up from their version;
//   compacted — the owner also publishes a store snapshot and compacts the
//             log (docs/scale-out.md, "Log compaction"): the joining node
//             takes the store snapshot instead of applying the log, then the
//             index snapshots.
// Each figure is from the joining node's start until a fresh search of both
// the dense and the lexical index finds the last memory written. The
// embedder is the default hash embedder, so embedding costs little here: with
// a model's embedder a rebuild costs each item's embedding on top, which a
// shared snapshot spares too.
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

constexpr std::string_view kUsage = "usage: bench-cluster-join [--items N] [--memosd PATH]\n";

struct Options {
  std::string memosd = "build/kernel/memosd";
  std::size_t items = 20000;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  memos::bench::read_options(argc, argv, "times a node joining a cluster until it serves searches",
                             [&](std::string_view flag, std::string_view value) {
                               if (flag == "--memosd") {
                                 opts.memosd = std::string(value);
                               } else if (flag == "--items") {
                                 opts.items = memos::bench::parse_positive(flag, value);
                               } else {
                                 return false;
                               }
                               return true;
                             });
  return opts;
}

// A node of cluster "bench" on one nats-server and one etcd member.
std::unique_ptr<MemosdProcess> start_node(const Options& opts, const TempDir& dir,
                                          const std::string& name,
                                          const memos::testing::NatsServers& nats,
                                          const memos::testing::EtcdServers& etcd,
                                          std::uint32_t share_s, const std::string& more = "") {
  const std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[cluster]\nenabled = true\nname = \"bench\"\nnode_id = \"" << name
                      << "\"\nnats = [\"" << nats.url(0) << "\"]\netcd = [\"" << etcd.url(0)
                      << "\"]\nreplicas = 1\nlease_ms = 1500\nshards = 1\nindex_share_s = "
                      << share_s << "\nindex_share_min_items = 1000\n"
                      << more;
  auto process = std::make_unique<MemosdProcess>(opts.memosd, dir.path(),
                                                 std::vector<std::string>{"--config", conf});
  memos::bench::start_daemon(*process, opts.memosd, 120s);
  return process;
}

// Until a fresh search on `socket` finds the memory `last` in both indexes.
void until_searchable(const std::string& socket, const std::string& text, std::uint64_t last) {
  memos::ClientOptions stale;
  stale.max_staleness_ms = 600000;
  auto connected = memos::Client::connect(socket, stale);
  if (!connected.ok()) throw std::runtime_error("connect: " + connected.error().message);
  auto& c = **connected;
  memos::SearchOptions options;
  options.fresh = true;
  options.k = 5;
  const auto deadline = Clock::now() + 600s;
  for (auto mode : {memos::SearchMode::lexical, memos::SearchMode::dense}) {
    options.mode = mode;
    for (;;) {
      auto hits = c.search("c", text, options);
      if (hits.ok() && std::any_of(hits->begin(), hits->end(),
                                   [&](const auto& h) { return h.item.id == last; })) {
        break;
      }
      if (Clock::now() > deadline) throw std::runtime_error("the joining node never found it");
      std::this_thread::sleep_for(20ms);
    }
  }
}

// Starts node `name` and reports how long until it serves searches.
void time_join(const Options& opts, const std::string& mode, const std::string& name,
               const memos::testing::NatsServers& nats, const memos::testing::EtcdServers& etcd,
               const std::string& text, std::uint64_t last) {
  TempDir dir;
  const auto started = Clock::now();
  auto node = start_node(opts, dir, name, nats, etcd, 0);
  const double ready_ms = ms_since(started);
  until_searchable(node->socket(), text, last);
  const double searchable_ms = ms_since(started);
  auto c = memos::bench::connect_client(node->socket());
  JsonLine()
      .str("bench", "cluster-join")
      .str("mode", mode)
      .count("items", opts.items)
      .num("ready_ms", ready_ms)
      .num("searchable_ms", searchable_ms)
      .num("snapshots_imported",
           metric(*c, "memosd_cluster_index_snapshots_total{result=\"imported\"}"))
      .boolean("took_store_snapshot", node->log().find("store snapshot (") != std::string::npos)
      .print();
  c.reset();
  memos::bench::stop_daemon(*node);
}

void run(const Options& opts) {
  memos::testing::NatsServers nats(1);
  memos::testing::EtcdServers etcd(1);
  if (!nats.start()) throw std::runtime_error("nats-server did not start: " + nats.log(0));
  if (!etcd.start()) throw std::runtime_error("etcd did not start: " + etcd.log(0));
  TempDir owner_dir;
  std::uint64_t last = 0;
  const std::string last_text = "the very last memory, about lighthouses at dusk";
  {
    auto owner = start_node(opts, owner_dir, "a", nats, etcd, 0);
    auto c = memos::bench::connect_client(owner->socket());
    const auto deadline = Clock::now() + 30s;
    while (!c->cube_create("c").ok()) {
      if (Clock::now() > deadline) throw std::runtime_error("node a never owned the store");
      std::this_thread::sleep_for(20ms);
    }
    std::vector<memos::NewItem> memories(opts.items);
    for (std::size_t i = 0; i < opts.items; ++i) {
      memories[i].text = "benchmark memory number " + std::to_string(i) + " about " +
                         (i % 3 ? "harbours and ferries" : "lighthouses");
    }
    memos::bench::add_pipelined(*c, "c", memories, opts.items, 64);
    memos::NewItem final_item;
    final_item.text = last_text;
    auto added = c->add("c", final_item);
    memos::bench::check(added, "add");
    last = added->id;
    c.reset();
    // The baseline: nothing shared.
    time_join(opts, "rebuild", "b", nats, etcd, last_text, last);
    memos::bench::stop_daemon(*owner);
  }
  // The owner again, sharing: wait for both snapshots, then a new node.
  auto owner = start_node(opts, owner_dir, "a", nats, etcd, 1);
  auto c = memos::bench::connect_client(owner->socket());
  const auto deadline = Clock::now() + 300s;
  while (metric(*c, "memosd_cluster_index_snapshots_total{result=\"published\"}") < 2) {
    if (Clock::now() > deadline) throw std::runtime_error("the owner never shared its indexes");
    std::this_thread::sleep_for(100ms);
  }
  time_join(opts, "shared", "c", nats, etcd, last_text, last);
  c.reset();
  memos::bench::stop_daemon(*owner);
  // The owner again, compacting the log too (retention 0: its first
  // compaction drops every record but the last), then a new node.
  owner = start_node(opts, owner_dir, "a", nats, etcd, 1,
                     "store_snapshot_s = 1\nlog_retention_s = 0\n");
  c = memos::bench::connect_client(owner->socket());
  while (metric(*c, "memosd_cluster_log_purged_records_total") < 1) {
    if (Clock::now() > deadline + 300s) throw std::runtime_error("the owner never compacted");
    std::this_thread::sleep_for(100ms);
  }
  time_join(opts, "compacted", "d", nats, etcd, last_text, last);
  c.reset();
  memos::bench::stop_daemon(*owner);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-cluster-join", kUsage, argc, argv, parse_options, run);
}
