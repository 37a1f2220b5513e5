// bench-dense-snapshot: saving and loading one large HNSW collection of the
// dense retriever, in process (no memosd): what memosd's clean stop (a save
// per cube) and its start (a load) cost in time and in memory. One JSON line:
//   {"bench", "documents", "dimension", "file_mb", "build_s", "save_s",
//    "save_peak_mb", "writer_wait_max_ms", "load_s", "load_peak_mb", "rss_mb"}
// Peaks are VmHWM above the VmRSS before the step (the high-water mark is
// reset through /proc/self/clear_refs first), so they are what the step
// itself added.
#include <malloc.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "plugins/faiss-retriever/dense_collection.h"
#include "tests/support/memosd_process.h"

namespace {

using namespace memos::bench;
using namespace memos::faiss_retriever;

constexpr std::string_view kUsage =
    "usage: bench-dense-snapshot [--documents N] [--dimension D] [--dir PATH] [--seed S]\n"
    "                            [--memosd PATH]\n";
constexpr std::size_t kRequest = 4096;  // as memosd's rebuild from the store sends them

struct Options {
  std::size_t documents = 200000;
  std::uint32_t dimension = 256;
  std::string dir;  // empty: a temporary folder
  std::uint64_t seed = 42;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "benchmarks saving and loading a large HNSW collection",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--documents") {
                   opts.documents = parse_positive(flag, value);
                 } else if (flag == "--dimension") {
                   opts.dimension = static_cast<std::uint32_t>(parse_positive(flag, value));
                 } else if (flag == "--dir") {
                   opts.dir = value;
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

// A field of /proc/self/status, in MiB.
double status_mb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  }
  throw std::runtime_error("no " + field + " in /proc/self/status");
}

// Returns freed heap to the system and restarts the high-water mark, so the
// next VmHWM is the peak of what follows. Returns VmRSS now.
double reset_peak() {
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  return status_mb("VmRSS");
}

std::unique_ptr<DenseCollection> build(const Options& opts, const IndexSettings& settings) {
  std::string detail;
  // Told how many are coming, it starts as HNSW and requests go straight
  // into the graph, as memosd's rebuild from the store does.
  auto collection = DenseCollection::open(1, opts.dimension, settings, "", &detail, opts.documents);
  std::mt19937_64 rng(opts.seed);
  std::normal_distribution<float> normal;
  std::uint64_t version = 0;
  for (std::size_t first = 0; first < opts.documents; first += kRequest) {
    std::vector<DocumentChange> docs(std::min(kRequest, opts.documents - first));
    for (std::size_t i = 0; i < docs.size(); ++i) {
      docs[i].id = first + i + 1;
      docs[i].vector.resize(opts.dimension);
      for (float& x : docs[i].vector) x = normal(rng);
      docs[i].attributes.tags = {"bench"};
      docs[i].attributes.state = "active";
    }
    std::string why = collection->index(std::move(docs), ++version);
    if (!why.empty()) throw std::runtime_error("index: " + why);
    if (first % (kRequest * 16) == 0) std::cerr << "  " << first << " documents\n";
  }
  collection->wait_for_rebuild();
  collection->wait_for_merge();
  if (collection->stats().kind != IndexKind::hnsw) throw std::runtime_error("not HNSW");
  return collection;
}

void run(const Options& opts) {
  memos::testing::TempDir temp;
  std::string dir = opts.dir.empty() ? temp.path() + "/index" : opts.dir;
  IndexSettings settings;
  std::cerr << "building " << opts.documents << " documents of dimension " << opts.dimension
            << "\n";
  auto start = Clock::now();
  auto collection = build(opts, settings);
  double build_s = seconds_since(start);

  // Saving: a writer (a removal of an absent id: the exclusive lock, no
  // change) keeps trying meanwhile, so its longest wait shows how long the
  // save kept writers out.
  std::cerr << "saving into " << dir << "\n";
  double rss_before = reset_peak();
  std::atomic<bool> saving{true};
  double wait_max_ms = 0;
  std::uint64_t absent = opts.documents + 1;
  std::thread writer([&] {
    std::uint64_t version = 1u << 30;
    while (saving.load()) {
      auto t = Clock::now();
      collection->remove(std::span(&absent, 1), ++version);
      wait_max_ms = std::max(wait_max_ms, seconds_since(t) * 1e3);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  CollectionState state;
  start = Clock::now();
  std::string why = collection->save(dir, &state);
  double save_s = seconds_since(start);
  saving = false;
  writer.join();
  double save_peak = status_mb("VmHWM") - rss_before;
  if (!why.empty()) throw std::runtime_error("save: " + why);
  auto file_bytes = std::filesystem::file_size(snapshot_path(dir, 1));
  collection.reset();

  std::cerr << "loading\n";
  rss_before = reset_peak();
  start = Clock::now();
  std::string detail;
  auto loaded = DenseCollection::open(1, opts.dimension, settings, dir, &detail);
  double load_s = seconds_since(start);
  double load_peak = status_mb("VmHWM") - rss_before;
  double rss_loaded = status_mb("VmRSS") - rss_before;
  if (detail != "loaded snapshot" || loaded->stats().documents != opts.documents) {
    throw std::runtime_error("load: " + detail);
  }
  JsonLine()
      .str("bench", "dense-snapshot")
      .count("documents", opts.documents)
      .count("dimension", opts.dimension)
      .num("file_mb", static_cast<double>(file_bytes) / (1024.0 * 1024.0), 1)
      .num("build_s", build_s, 1)
      .num("save_s", save_s)
      .num("save_peak_mb", save_peak, 1)
      .num("writer_wait_max_ms", wait_max_ms, 1)
      .num("load_s", load_s)
      .num("load_peak_mb", load_peak, 1)
      .num("rss_mb", rss_loaded, 1)
      .print();
}

}  // namespace

int main(int argc, char** argv) {
  return bench_main("bench-dense-snapshot", kUsage, argc, argv, parse_options, run);
}
