// ipc_search.cpp — bench-ipc-search: what going through memosd costs.
//
// Starts a real memosd, adds N synthetic memories through the SDK (pipelined,
// then a short sequential run for comparison) and times Q blocking searches.
// Then it embeds the same texts with the same embedder into an exact FAISS
// index in this process and times the same queries there, so the difference
// is the daemon's share: IPC, framing, dispatch, the worker hop and the store
// lookups of the hits. Results are JSON objects, one per line, on stdout;
// notes and warnings go to stderr. Usage: see kUsage.

#include <faiss/IndexFlat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <faiss/utils/distances.h>
#include "bench/bench_util.h"
#include "bench/freshness_probe.h"
#include "bench/synthetic_text.h"
#include "memos/client.h"
#include "plugins/faiss-retriever/query_path.h"
#include "plugins/hash-embedder/hash_embedder.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::add_pipelined;
using memos::bench::check;
using memos::bench::Clock;
using memos::bench::connect_client;
using memos::bench::create_cube;
using memos::bench::JsonLine;
using memos::bench::LatencyStats;
using memos::bench::parse_positive;
using memos::bench::parse_unsigned;
using memos::bench::read_options;
using memos::bench::seconds_since;
using memos::bench::start_daemon;
using memos::bench::stop_daemon;
using memos::bench::summarize;
using memos::bench::UsageError;
using memos::bench::wait_until_indexed;
// FAISS 1.7.3 names its id type faiss::Index::idx_t (later releases move it).
using FaissId = faiss::Index::idx_t;

constexpr std::string_view kUsage =
    "usage: bench-ipc-search --memosd PATH [--items N] [--queries Q] [--k K]\n"
    "                        [--pipeline P] [--seed S]\n";

constexpr std::size_t kWarmupQueries = 50;
// Queries whose top score is compared between the daemon and in process.
constexpr std::size_t kCheckedQueries = 20;
// Both sides run the same embedder and an exact search over the same vectors,
// so their top scores differ at most by float rounding.
constexpr float kScoreTolerance = 1e-4f;
constexpr std::size_t kMaxSequentialItems = 1000;
// Adds answered only once searchable, and freshness probes under load.
constexpr std::size_t kMaxWaitedItems = 5000;
constexpr std::size_t kFreshnessProbes = 200;
constexpr double kFreshnessSeconds = 3;

struct Options {
  std::string memosd;
  std::size_t items = 10000;
  std::size_t queries = 1000;
  std::uint32_t k = 10;
  std::size_t pipeline = 256;
  std::uint64_t seed = 42;
};

// ---- options ---------------------------------------------------------------

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "benchmarks memosd's add and search",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--items") {
                   opts.items = parse_positive(flag, value);
                 } else if (flag == "--queries") {
                   opts.queries = parse_positive(flag, value);
                 } else if (flag == "--k") {
                   std::uint64_t k = parse_positive(flag, value);
                   if (k > UINT32_MAX) throw UsageError("--k is too large");
                   opts.k = static_cast<std::uint32_t>(k);
                 } else if (flag == "--pipeline") {
                   opts.pipeline = parse_positive(flag, value);
                 } else if (flag == "--seed") {
                   opts.seed = parse_unsigned(flag, value);  // 0 is a fine seed
                 } else {
                   return false;
                 }
                 return true;
               });
  if (opts.memosd.empty()) throw UsageError("--memosd is required");
  return opts;
}

// ---- synthetic workload ----------------------------------------------------

struct Workload {
  std::vector<memos::NewItem> memories;
  std::vector<std::string> queries;
};

Workload make_workload(const Options& opts) {
  memos::bench::SyntheticWorkload synthetic =
      memos::bench::make_search_workload(opts.seed, opts.items, opts.queries);
  Workload work;
  work.memories.reserve(opts.items);
  for (memos::bench::SyntheticMemory& memory : synthetic.memories) {
    memos::NewItem item;
    item.text = std::move(memory.text);
    item.tags = std::move(memory.tags);
    item.allow_duplicate = true;  // a synthetic sentence may come twice: store each
    work.memories.push_back(std::move(item));
  }
  work.queries = std::move(synthetic.queries);
  return work;
}

// ---- results ---------------------------------------------------------------

JsonLine bench_line(std::string_view phase) {
  JsonLine line;
  line.str("bench", "ipc-search").str("phase", phase);
  return line;
}

// The latencies of one system, and the top score of its first queries (empty
// when a query found nothing).
struct SearchRun {
  LatencyStats stats;
  std::vector<std::optional<float>> top_scores;
};

// Runs the warm-up, then every query once, each timed on its own. `search`
// takes a query and returns its top score. Both systems go through this, so
// they are measured the same way.
template <class SearchFn>
SearchRun time_searches(const std::vector<std::string>& queries, SearchFn&& search) {
  for (std::size_t i = 0; i < kWarmupQueries; ++i) search(queries[i % queries.size()]);
  SearchRun run;
  std::vector<double> latencies_us;
  latencies_us.reserve(queries.size());
  for (std::size_t i = 0; i < queries.size(); ++i) {
    auto start = Clock::now();
    std::optional<float> top = search(queries[i]);
    latencies_us.push_back(seconds_since(start) * 1e6);
    if (i < kCheckedQueries) run.top_scores.push_back(top);
  }
  run.stats = summarize(std::move(latencies_us));
  return run;
}

void print_search(std::string_view system, const Options& opts, const LatencyStats& s) {
  bench_line("search")
      .str("system", system)
      .count("items", opts.items)
      .count("k", opts.k)
      .count("queries", opts.queries)
      .num("p50_us", s.p50)
      .num("p99_us", s.p99)
      .num("mean_us", s.mean)
      .print();
}

// ---- through memosd --------------------------------------------------------

// `catchup_s`: from the last answer until every add was searchable (< 0:
// not measured; 0 when the adds waited for it).
void print_add(std::size_t items, std::size_t pipeline, double seconds, bool wait_searchable,
               double catchup_s = -1) {
  JsonLine line = bench_line("add");
  line.count("items", items)
      .count("pipeline", pipeline)
      .str("ack", wait_searchable ? "searchable" : "durable")
      .num("seconds", seconds, 6)
      .num("adds_per_s", static_cast<double>(items) / seconds);
  if (catchup_s >= 0) line.num("catchup_s", catchup_s, 6);
  line.print();
}

struct DaemonResults {
  double adds_per_s = 0;
  std::uint32_t dimension = 0;
  SearchRun search;
};

DaemonResults bench_daemon(memos::Client& client, const std::string& socket, const Workload& work,
                           const Options& opts) {
  DaemonResults out;
  memos::Cube cube = create_cube(client, "bench");
  out.dimension = cube.dimension;
  std::cerr << "adding " << opts.items << " memories, " << opts.pipeline << " in flight\n";
  double seconds = add_pipelined(client, cube.name, work.memories, opts.items, opts.pipeline);
  out.adds_per_s = static_cast<double>(opts.items) / seconds;
  // Answered once durable: the searches below start once the index has
  // caught up, so they measure searching, not indexing.
  print_add(opts.items, opts.pipeline, seconds, false, wait_until_indexed(client, cube.name));

  // Other cubes, so these adds do not change what is searched.
  std::size_t sequential = std::min(opts.items / 10, kMaxSequentialItems);
  if (sequential > 0) {
    std::cerr << "adding " << sequential << " memories one at a time\n";
    memos::Cube seq_cube = create_cube(client, "bench-sequential");
    print_add(sequential, 1, add_pipelined(client, seq_cube.name, work.memories, sequential, 1),
              false);
  }
  std::size_t waited = std::min(opts.items, kMaxWaitedItems);
  if (waited > 0) {
    std::cerr << "adding " << waited << " memories answered once searchable\n";
    memos::ClientOptions wait;
    wait.wait_searchable = true;
    auto connected = memos::Client::connect(socket, wait);
    if (!connected.ok()) throw std::runtime_error("connect: " + connected.error().message);
    memos::Client& waiting = *connected.value();
    memos::Cube wait_cube = create_cube(waiting, "bench-wait");
    print_add(waited, opts.pipeline,
              add_pipelined(waiting, wait_cube.name, work.memories, waited, opts.pipeline), true);
    std::size_t one_by_one = std::min(waited / 10, kMaxSequentialItems);
    if (one_by_one > 0) {
      memos::Cube single = create_cube(waiting, "bench-wait-sequential");
      print_add(one_by_one, 1, add_pipelined(waiting, single.name, work.memories, one_by_one, 1),
                true);
    }
  }

  memos::SearchOptions search_opts;
  search_opts.mode = memos::SearchMode::dense;  // the in-process baseline is dense search
  search_opts.k = opts.k;
  std::cerr << "searching " << opts.queries << " queries through memosd\n";
  out.search = time_searches(work.queries, [&](const std::string& query) {
    auto hits = client.search(cube.name, query, search_opts);
    if (!hits.ok()) throw std::runtime_error("search failed: " + hits.error().message);
    return hits->empty() ? std::nullopt : std::optional<float>(hits->front().score);
  });
  print_search("memosd", opts, out.search.stats);

  std::cerr << "probing freshness under pipelined adds\n";
  memos::bench::FreshnessResult f = memos::bench::measure_freshness(
      socket, work.memories, opts.pipeline, kFreshnessProbes, kFreshnessSeconds);
  bench_line("freshness")
      .count("probes", f.probes)
      .count("pipeline", opts.pipeline)
      .num("load_adds_per_s", f.load_adds_per_s)
      .num("visible_p50_ms", f.visible_ms.p50, 3)
      .num("visible_p99_ms", f.visible_ms.p99, 3)
      .num("daemon_freshness_p50_ms", f.daemon_p50_ms, 3)
      .num("daemon_freshness_p99_ms", f.daemon_p99_ms, 3)
      .print();
  return out;
}

// ---- in process ------------------------------------------------------------

SearchRun bench_inprocess(const Workload& work, const Options& opts, std::size_t dimension) {
  memos::embed::HashEmbedder embedder(dimension);
  std::cerr << "embedding " << opts.items << " memories in process\n";
  std::vector<float> vectors(work.memories.size() * dimension);
  for (std::size_t i = 0; i < work.memories.size(); ++i) {
    embedder.embed(work.memories[i].text,
                   std::span<float>(vectors).subspan(i * dimension, dimension));
  }
  // The same FAISS setting as memosd's dense retriever (single queries
  // through BLAS), so the baseline is the limit the daemon could reach.
  faiss::distance_compute_blas_threshold = memos::faiss_retriever::single_query_blas_threshold();
  faiss::IndexFlatIP index(static_cast<FaissId>(dimension));
  index.add(static_cast<FaissId>(work.memories.size()), vectors.data());

  std::vector<float> scores(opts.k);
  std::vector<FaissId> labels(opts.k);
  std::cerr << "searching " << opts.queries << " queries in process\n";
  SearchRun run = time_searches(work.queries, [&](const std::string& query) {
    std::vector<float> q = embedder.embed(query);
    index.search(1, q.data(), static_cast<FaissId>(opts.k), scores.data(), labels.data());
    return labels[0] < 0 ? std::nullopt : std::optional<float>(scores[0]);
  });
  print_search("inprocess-faiss", opts, run.stats);
  return run;
}

// ---- comparison ------------------------------------------------------------

// The fraction of checked queries whose top scores agree; warns about others.
double top1_agreement(const SearchRun& daemon, const SearchRun& inproc) {
  std::size_t checked = std::min(daemon.top_scores.size(), inproc.top_scores.size());
  if (checked == 0) return 1.0;
  std::size_t agree = 0;
  for (std::size_t i = 0; i < checked; ++i) {
    const auto& d = daemon.top_scores[i];
    const auto& p = inproc.top_scores[i];
    bool same = d.has_value() == p.has_value() && (!d || std::abs(*d - *p) <= kScoreTolerance);
    if (same) {
      ++agree;
    } else {
      std::cerr << "warning: query " << i << ": memosd top score "
                << (d ? std::to_string(*d) : "none") << ", in process "
                << (p ? std::to_string(*p) : "none") << '\n';
    }
  }
  return static_cast<double>(agree) / static_cast<double>(checked);
}

void print_summary(const Options& opts, const DaemonResults& daemon, const SearchRun& inproc) {
  const LatencyStats& d = daemon.search.stats;
  const LatencyStats& p = inproc.stats;
  bench_line("summary")
      .count("items", opts.items)
      .num("adds_per_s", daemon.adds_per_s)
      .num("daemon_p50_us", d.p50)
      .num("inproc_p50_us", p.p50)
      .num("p50_ratio", d.p50 / p.p50)
      .num("daemon_p99_us", d.p99)
      .num("inproc_p99_us", p.p99)
      .num("p99_ratio", d.p99 / p.p99)
      .num("top1_agree", top1_agreement(daemon.search, inproc))
      .print();
}

// ---- the run ---------------------------------------------------------------

void run(const Options& opts) {
  // The daemon starts first, so a wrong --memosd fails before any work.
  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path());
  start_daemon(daemon, opts.memosd);
  std::unique_ptr<memos::Client> client = connect_client(daemon.socket());

  std::cerr << "generating " << opts.items << " memories and " << opts.queries << " queries\n";
  Workload work = make_workload(opts);

  DaemonResults daemon_results = bench_daemon(*client, daemon.socket(), work, opts);
  SearchRun inproc = bench_inprocess(work, opts, daemon_results.dimension);
  print_summary(opts, daemon_results, inproc);

  client.reset();  // before stopping: see stop_daemon
  stop_daemon(daemon);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-ipc-search", kUsage, argc, argv, parse_options, run);
}
