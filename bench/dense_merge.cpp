// bench-dense-merge: sustained writes into one large HNSW collection of the
// dense retriever, in process (no memosd): how fast index requests go once
// the merger paces them (backpressure at fresh_limit), how soon the graph
// holds everything, and what searches wait meanwhile. For each merge
// thread count of --threads, one JSON line:
//   {"threads", "batch", "base", "adds", "request", "base_s", "adds_per_s",
//    "merged_per_s", "searches", "search_p50_ms", "search_p99_ms",
//    "search_max_ms"}
#include <algorithm>
#include <atomic>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/synthetic_text.h"
#include "plugins/faiss-retriever/dense_collection.h"
#include "plugins/hash-embedder/hash_embedder.h"

namespace {

using namespace memos::bench;
using namespace memos::faiss_retriever;

constexpr std::string_view kUsage =
    "usage: bench-dense-merge [--base N] [--adds N] [--request N] [--threads 1,2]\n"
    "                         [--batch B] [--dimension D] [--seed S] [--memosd PATH]\n";
constexpr std::size_t kVocabularySize = 20000;
// Between two searches of the searching thread: it samples latency, it does
// not compete for the cores.
constexpr auto kSearchPause = std::chrono::milliseconds(2);

struct Options {
  std::size_t base = 20000;  // documents bulk-loaded into the graph first
  std::size_t adds = 20000;  // then written in requests of `request`
  std::size_t request = 32;  // documents per index request
  std::vector<int> threads{1, IndexSettings::default_merge_threads()};
  std::size_t batch = IndexSettings{}.merge_batch;
  std::uint32_t dimension = 256;
  std::uint64_t seed = 42;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "benchmarks sustained writes into a large HNSW collection",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--base") {
                   opts.base = parse_unsigned(flag, value);
                 } else if (flag == "--adds") {
                   opts.adds = parse_positive(flag, value);
                 } else if (flag == "--request") {
                   opts.request = parse_positive(flag, value);
                 } else if (flag == "--threads") {
                   opts.threads.clear();
                   std::stringstream list{std::string(value)};
                   for (std::string one; std::getline(list, one, ',');) {
                     opts.threads.push_back(static_cast<int>(parse_positive("--threads", one)));
                   }
                   if (opts.threads.empty()) throw UsageError("--threads needs a count");
                 } else if (flag == "--batch") {
                   opts.batch = parse_positive(flag, value);
                 } else if (flag == "--dimension") {
                   opts.dimension = static_cast<std::uint32_t>(parse_positive(flag, value));
                 } else if (flag == "--seed") {
                   opts.seed = parse_unsigned(flag, value);
                 } else if (flag == "--memosd") {
                   // scripts/bench passes it to every benchmark; this one runs in process.
                 } else {
                   return false;
                 }
                 return true;
               });
  return opts;
}

std::vector<DocumentChange> make_documents(const Options& opts, std::size_t count,
                                           std::uint64_t first_id, Rng& rng) {
  Rng vocabulary_rng(opts.seed);
  std::vector<std::string> vocabulary = make_vocabulary(vocabulary_rng, kVocabularySize);
  ZipfSampler zipf(vocabulary.size());
  memos::embed::HashEmbedder embedder(opts.dimension);
  std::vector<DocumentChange> docs(count);
  for (std::size_t i = 0; i < count; ++i) {
    docs[i].id = first_id + i;
    docs[i].vector = embedder.embed(make_sentence(rng, vocabulary, zipf, 8, 30));
  }
  return docs;
}

std::vector<DocumentChange> slice(const std::vector<DocumentChange>& docs, std::size_t first,
                                  std::size_t count) {
  auto begin = docs.begin() + static_cast<std::ptrdiff_t>(first);
  return {begin, begin + static_cast<std::ptrdiff_t>(std::min(count, docs.size() - first))};
}

void run_one(const Options& opts, int threads, const std::vector<DocumentChange>& base,
             const std::vector<DocumentChange>& adds, const std::vector<float>& query) {
  IndexSettings settings;
  settings.merge_threads = threads;
  settings.merge_batch = opts.batch;
  std::uint64_t version = 0;
  // The base goes in as memosd's rebuild from the store does: the
  // collection opens as HNSW when told how many are coming, and large
  // requests go straight into the graph.
  std::cerr << threads << " threads: loading " << base.size() << " documents\n";
  auto start = Clock::now();
  std::string detail;
  auto collection =
      DenseCollection::open(1, opts.dimension, settings, "", &detail, base.size() + adds.size());
  for (std::size_t i = 0; i < base.size(); i += 4096) {
    collection->index(slice(base, i, 4096), ++version);
  }
  collection->wait_for_rebuild();
  collection->wait_for_merge();
  double base_s = seconds_since(start);
  if (base.size() > settings.hnsw_threshold && collection->stats().kind != IndexKind::hnsw) {
    throw std::runtime_error("the base did not become HNSW");
  }

  std::cerr << threads << " threads: writing " << adds.size() << " documents in requests of "
            << opts.request << "\n";
  std::atomic<bool> writing{true};
  std::vector<double> latencies;
  std::size_t empty = 0;
  std::thread searcher([&] {
    memos::retrieval::FilterSpec filter;  // what a plain search through memosd decodes to
    filter.states = {"active"};
    filter.as_of_ms = filter.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();
    while (writing.load()) {
      auto t = Clock::now();
      auto hits = collection->search(query, 10, filter);
      latencies.push_back(seconds_since(t) * 1e3);
      if (hits.empty()) ++empty;
      std::this_thread::sleep_for(kSearchPause);
    }
  });
  start = Clock::now();
  for (std::size_t i = 0; i < adds.size(); i += opts.request) {
    collection->index(slice(adds, i, opts.request), ++version);
  }
  double write_s = seconds_since(start);
  collection->wait_for_merge();
  double merged_s = seconds_since(start);
  writing = false;
  searcher.join();
  if (empty > 0) throw std::runtime_error(std::to_string(empty) + " searches found nothing");
  auto stats = collection->stats();
  if (stats.documents != base.size() + adds.size() || stats.fresh != 0 ||
      !stats.merge_error.empty()) {
    throw std::runtime_error("the collection did not take every document: " +
                             collection->state().detail);
  }
  LatencyStats search = summarize(latencies);
  double max_ms = latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
  JsonLine()
      .count("threads", static_cast<std::uint64_t>(threads))
      .count("batch", opts.batch)
      .count("base", base.size())
      .count("adds", adds.size())
      .count("request", opts.request)
      .num("base_s", base_s)
      .num("adds_per_s", static_cast<double>(adds.size()) / write_s, 0)
      .num("merged_per_s", static_cast<double>(adds.size()) / merged_s, 0)
      .count("searches", latencies.size())
      .num("search_p50_ms", search.p50, 3)
      .num("search_p99_ms", search.p99, 3)
      .num("search_max_ms", max_ms, 3)
      .print();
}

void run(const Options& opts) {
  Rng rng(opts.seed + 1);
  std::cerr << "embedding " << opts.base + opts.adds << " documents\n";
  auto base = make_documents(opts, opts.base, 1, rng);
  auto adds = make_documents(opts, opts.adds, 1 + opts.base, rng);
  std::vector<float> query = adds.front().vector;
  for (int threads : opts.threads) run_one(opts, threads, base, adds, query);
}

}  // namespace

int main(int argc, char** argv) {
  return bench_main("bench-dense-merge", kUsage, argc, argv, parse_options, run);
}
