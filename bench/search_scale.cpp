// bench-search-scale: search as a cube grows. For each size: pipelined add
// throughput into a real memosd, the time to rebuild its indexes from the
// store (and to reopen them from snapshots), search latency in each mode,
// memosd's resident memory, and in the same run the same FAISS index (exact
// below the dense retriever's HNSW threshold, HNSW above, same parameters)
// over the same vectors in process: the limit the daemon's dense search
// could reach. One JSON object per line and mode:
//   {"size", "mode", "adds_per_s", "build_s", "ready_s", "stop_s", "open_s",
//    "p50_ms", "p99_ms", "rss_mb", "ingest_rss_mb", "inproc_p50_ms", "ratio"}
//   (inproc, ratio: dense)
// build_s: memosd up with its indexes rebuilt from the store (searchable);
// ready_s: until the background HNSW build is done too; stop_s: the clean
// stop right after the adds (indexing the backlog, writing snapshots);
// open_s: a restart that opens the snapshots instead; ingest_rss_mb: memosd's
// resident memory right after the adds, rss_mb after the searches.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/synthetic_text.h"
#include "memos/client.h"
#include "plugins/faiss-retriever/query_path.h"
#include "plugins/hash-embedder/hash_embedder.h"
#include "tests/support/memosd_process.h"
#include "tests/support/raw_connection.h"

namespace {

using namespace memos::bench;
using FaissId = faiss::Index::idx_t;

constexpr std::string_view kUsage =
    "usage: bench-search-scale --memosd PATH [--sizes 10000,100000] [--queries Q] [--k K]\n"
    "                          [--seed S] [--log FILE] [--inproc on|off]\n"
    "                          [--rebuild on|off]\n";

// The faiss-retriever's defaults (plugins/faiss-retriever/README.md).
constexpr std::size_t kHnswThreshold = 20000;
constexpr int kHnswM = 32, kEfConstruction = 64, kEfSearch = 64;
constexpr std::size_t kVocabularySize = 20000;
constexpr std::size_t kPipeline = 256;
constexpr std::size_t kWarmup = 50;
const memos::SearchMode kModes[] = {memos::SearchMode::dense, memos::SearchMode::lexical,
                                    memos::SearchMode::hybrid};
// A start may rebuild every index from the store.
constexpr std::chrono::seconds kStartTimeout{1800};

struct Options {
  std::string memosd;
  std::vector<std::size_t> sizes{10000, 100000};
  std::size_t queries = 1000;
  std::uint32_t k = 10;
  std::uint64_t seed = 42;
  std::string log;  // memosd's log of each size appended here (where stops and starts spend time)
  bool inproc = true;   // --inproc off: no in-process index (minutes at 1M, one thread)
  bool rebuild = true;  // --rebuild off: search the reopened snapshots, no rebuild (build_s null)
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "benchmarks search as a cube grows",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--sizes") {
                   opts.sizes.clear();
                   std::stringstream list{std::string(value)};
                   for (std::string one; std::getline(list, one, ',');)
                     opts.sizes.push_back(parse_positive("--sizes", one));
                   if (opts.sizes.empty()) throw UsageError("--sizes needs at least one size");
                 } else if (flag == "--queries") {
                   opts.queries = parse_positive(flag, value);
                 } else if (flag == "--k") {
                   std::uint64_t k = parse_positive(flag, value);
                   if (k > 1000) throw UsageError("--k must be at most 1000");
                   opts.k = static_cast<std::uint32_t>(k);
                 } else if (flag == "--seed") {
                   opts.seed = parse_unsigned(flag, value);
                 } else if (flag == "--log") {
                   opts.log = value;
                 } else if (flag == "--inproc" || flag == "--rebuild") {
                   if (value != "on" && value != "off")
                     throw UsageError(std::string(flag) + " is on or off");
                   (flag == "--inproc" ? opts.inproc : opts.rebuild) = value == "on";
                 } else {
                   return false;
                 }
                 return true;
               });
  if (opts.memosd.empty()) throw UsageError("--memosd is required");
  return opts;
}

double rss_mb(pid_t pid) {
  return static_cast<double>(memos::testing::resident_kib(pid)) / 1024.0;
}

// Times each query on its own after a warm-up; returns microseconds.
template <class Fn>
LatencyStats time_queries(const std::vector<std::string>& queries, Fn&& fn) {
  for (std::size_t i = 0; i < kWarmup; ++i) fn(queries[i % queries.size()]);
  std::vector<double> us;
  us.reserve(queries.size());
  for (const auto& q : queries) {
    auto start = Clock::now();
    fn(q);
    us.push_back(seconds_since(start) * 1e6);
  }
  return summarize(std::move(us));
}

struct InProcess {
  double build_s = 0;
  LatencyStats search;
};

// The dense retriever's index over the same vectors, in this process.
InProcess bench_in_process(const std::vector<memos::NewItem>& memories,
                           const std::vector<std::string>& queries, std::uint32_t dimension,
                           std::uint32_t k) {
  // As memosd's dense retriever.
  faiss::distance_compute_blas_threshold = memos::faiss_retriever::single_query_blas_threshold();
  omp_set_num_threads(1);  // one search per thread, as in memosd
  memos::embed::HashEmbedder embedder(dimension);
  std::vector<float> vectors(memories.size() * dimension);
  for (std::size_t i = 0; i < memories.size(); ++i) {
    embedder.embed(memories[i].text, std::span<float>(vectors).subspan(i * dimension, dimension));
  }
  std::unique_ptr<faiss::Index> index;
  auto start = Clock::now();
  if (memories.size() < kHnswThreshold) {
    index = std::make_unique<faiss::IndexFlatIP>(dimension);
  } else {
    auto hnsw =
        std::make_unique<faiss::IndexHNSWFlat>(dimension, kHnswM, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = kEfConstruction;
    hnsw->hnsw.efSearch = kEfSearch;
    index = std::move(hnsw);
  }
  index->add(static_cast<FaissId>(memories.size()), vectors.data());
  InProcess out;
  out.build_s = seconds_since(start);
  std::vector<float> scores(k);
  std::vector<FaissId> labels(k);
  out.search = time_queries(queries, [&](const std::string& q) {
    std::vector<float> v = embedder.embed(q);
    index->search(1, v.data(), static_cast<FaissId>(k), scores.data(), labels.data());
  });
  return out;
}

double add_all(memos::Client& client, const std::string& cube,
               const std::vector<memos::NewItem>& memories) {
  std::deque<std::future<memos::Result<memos::Item>>> window;
  auto start = Clock::now();
  for (const auto& m : memories) {
    if (window.size() >= kPipeline) {
      check(window.front().get(), "add");
      window.pop_front();
    }
    window.push_back(client.add_async(cube, m));
  }
  for (auto& f : window) check(f.get(), "add");
  return seconds_since(start);
}

void run_size(const Options& opts, std::size_t size) {
  Rng vocabulary_rng(opts.seed), memory_rng(opts.seed + 1), query_rng(opts.seed + 2);
  std::vector<std::string> vocabulary = make_vocabulary(vocabulary_rng, kVocabularySize);
  ZipfSampler zipf(vocabulary.size());
  std::vector<memos::NewItem> memories(size);
  for (auto& m : memories) {
    m.text = make_sentence(memory_rng, vocabulary, zipf, 8, 30);
    m.tags = make_tags(memory_rng);
    m.allow_duplicate = true;  // a synthetic sentence may come twice: store each
  }
  std::vector<std::string> queries(opts.queries);
  for (auto& q : queries) q = make_sentence(query_rng, vocabulary, zipf, 3, 8);

  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path());
  start_daemon(daemon, opts.memosd, kStartTimeout);
  std::uint32_t dimension = 0;
  double adds_per_s = 0;
  {
    auto client = connect_client(daemon.socket());
    memos::Cube cube = create_cube(*client, "scale");
    dimension = cube.dimension;
    std::cerr << size << ": adding, " << kPipeline << " in flight\n";
    adds_per_s = static_cast<double>(size) / add_all(*client, cube.name, memories);
  }
  const double ingest_rss = rss_mb(daemon.pid());
  // A clean stop indexes what is still queued and snapshots the indexes
  // (for at most search.stop_snapshot_s): how long it takes is one figure,
  // reopening them another, rebuilding them from the store without
  // snapshots a third.
  auto start = Clock::now();
  stop_daemon(daemon);
  const double stop_s = seconds_since(start);
  start = Clock::now();
  start_daemon(daemon, opts.memosd, kStartTimeout);
  double open_s = seconds_since(start);
  std::optional<double> build_s;
  if (opts.rebuild) {
    stop_daemon(daemon);
    std::filesystem::remove_all(daemon.data_dir() + "/index");
    std::cerr << size << ": rebuilding the indexes from the store\n";
    start = Clock::now();
    start_daemon(daemon, opts.memosd, kStartTimeout);
    build_s = seconds_since(start);
  }

  auto client = connect_client(daemon.socket());
  // The dense retriever builds HNSW in the background once a cube outgrows
  // exact search: time searches on the finished index.
  std::string indexes;
  for (;;) {
    auto shown = client->cube_show("scale");
    check(shown, "cube show");
    indexes = shown->indexes;
    bool graph_due = size >= kHnswThreshold && indexes.find("hnsw") == std::string::npos;
    if (!graph_due && indexes.find("rebuilding") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  double ready_s = seconds_since(start);
  std::cerr << size << ": " << indexes << "\n";
  std::vector<std::pair<std::string, LatencyStats>> daemon_runs;
  for (memos::SearchMode mode : kModes) {
    memos::SearchOptions search;
    search.k = opts.k;
    search.mode = mode;
    std::cerr << size << ": " << opts.queries << " " << memos::to_string(mode)
              << " searches through memosd\n";
    daemon_runs.emplace_back(memos::to_string(mode),
                             time_queries(queries, [&](const std::string& q) {
                               check(client->search("scale", q, search), "search");
                             }));
  }
  double rss = rss_mb(daemon.pid());
  client.reset();
  stop_daemon(daemon);
  if (!opts.log.empty()) std::ofstream(opts.log, std::ios::app) << daemon.log();

  InProcess inproc;
  if (opts.inproc) {
    std::cerr << size << ": the same dense index in process\n";
    inproc = bench_in_process(memories, queries, dimension, opts.k);
  }
  for (const auto& [mode, stats] : daemon_runs) {
    JsonLine line;
    line.count("size", size).str("mode", mode).num("adds_per_s", adds_per_s, 0);
    if (build_s) {
      line.num("build_s", *build_s);
    } else {
      line.null("build_s");
    }
    line.num("ready_s", ready_s)
        .num("stop_s", stop_s)
        .num("open_s", open_s)
        .num("p50_ms", stats.p50 / 1000.0, 4)
        .num("p99_ms", stats.p99 / 1000.0, 4)
        .num("rss_mb", rss, 1)
        .num("ingest_rss_mb", ingest_rss, 1);
    if (mode == "dense" && opts.inproc) {
      line.num("inproc_build_s", inproc.build_s)
          .num("inproc_p50_ms", inproc.search.p50 / 1000.0, 4)
          .num("inproc_p99_ms", inproc.search.p99 / 1000.0, 4)
          .num("ratio", stats.p50 / inproc.search.p50, 2);
    } else {
      line.null("inproc_p50_ms").null("ratio");
    }
    line.print();
  }
}

void run(const Options& opts) {
  for (std::size_t size : opts.sizes) run_size(opts, size);
}

}  // namespace

int main(int argc, char** argv) {
  return bench_main("bench-search-scale", kUsage, argc, argv, parse_options, run);
}
