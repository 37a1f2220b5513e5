// import_stall.cpp — bench-import-stall: what a large import costs other
// clients' writes.
//
// A tenant importing a big archive shares memosd's one writer thread with
// everyone else. This builds a cube of N items, exports it to memory, then
// runs one client adding items one at a time (each waits for its durable
// reply) twice for the same time: once with the daemon otherwise idle (the
// baseline) and once while another client imports the archive. It reports
// the adds' latency in both, the longest single add (the stall), and how
// long the import took. (An import once embedded and indexed the whole
// cube on the writer thread: a 50,000-item import stalled every add for
// seconds.) Results are JSON objects, one per line, on stdout.
// Usage: see kUsage.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/synthetic_text.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::Clock;
using memos::bench::connect_client;
using memos::bench::create_cube;
using memos::bench::JsonLine;
using memos::bench::make_sentence;
using memos::bench::make_vocabulary;
using memos::bench::parse_positive;
using memos::bench::parse_unsigned;
using memos::bench::read_options;
using memos::bench::Rng;
using memos::bench::seconds_since;
using memos::bench::start_daemon;
using memos::bench::stop_daemon;
using memos::bench::summarize;
using memos::bench::UsageError;
using memos::bench::ZipfSampler;

constexpr std::string_view kUsage =
    "usage: bench-import-stall --memosd PATH [--items N] [--pipeline P] [--seed S]\n";

constexpr std::size_t kVocabularySize = 4000;
constexpr std::size_t kMinWords = 8, kMaxWords = 30;

struct Options {
  std::string memosd;
  std::size_t items = 50000;
  std::size_t pipeline = 256;
  std::uint64_t seed = 42;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "measures how a large import delays other clients' adds",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--items") {
                   opts.items = parse_positive(flag, value);
                 } else if (flag == "--pipeline") {
                   opts.pipeline = parse_positive(flag, value);
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

// Adds `n` sentences to `cube` with up to `pipeline` requests in flight.
void fill(memos::Client& client, const std::string& cube, std::size_t n, std::size_t pipeline,
          Rng& rng) {
  const auto vocabulary = make_vocabulary(rng, kVocabularySize);
  const ZipfSampler zipf(kVocabularySize);
  std::vector<std::future<memos::Result<memos::Item>>> window;
  for (std::size_t i = 0; i < n; ++i) {
    memos::NewItem item;
    item.text = make_sentence(rng, vocabulary, zipf, kMinWords, kMaxWords);
    item.allow_duplicate = true;  // a synthetic sentence may come twice: store each
    window.push_back(client.add_async(cube, std::move(item)));
    if (window.size() == pipeline || i + 1 == n) {
      for (auto& f : window) memos::bench::check(f.get(), "add");
      window.clear();
    }
  }
}

// One add at a time until `stop`; returns each add's latency in ms. Adds
// slower than 500 ms are noted on stderr with when they started, to line
// them up with the daemon's log.
std::vector<double> timed_adds(memos::Client& client, const std::atomic<bool>& stop) {
  std::vector<double> ms;
  const auto first = Clock::now();
  for (std::size_t i = 0; !stop.load(); ++i) {
    auto started = Clock::now();
    memos::bench::check(client.add("other", {"another tenant's note " + std::to_string(i)}),
                        "timed add");
    ms.push_back(seconds_since(started) * 1000);
    if (ms.back() > 500) {
      std::cerr << "slow add: " << ms.back() << " ms, started at "
                << std::chrono::duration<double>(started - first).count() << " s\n";
    }
  }
  return ms;
}

void report(std::string_view phase, std::vector<double> ms, double import_seconds) {
  const auto stats = summarize(ms);
  JsonLine line;
  line.str("bench", "import-stall").str("phase", phase).count("adds", ms.size());
  line.num("p50_ms", stats.p50).num("p99_ms", stats.p99);
  line.num("max_ms", ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()));
  if (import_seconds > 0) line.num("import_seconds", import_seconds);
  line.print();
}

void run(const Options& opts) {
  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path());
  start_daemon(daemon, opts.memosd);
  {
    auto importer = connect_client(daemon.socket());
    auto other = connect_client(daemon.socket());
    create_cube(*importer, "src");
    create_cube(*other, "other");
    Rng rng(opts.seed);
    fill(*importer, "src", opts.items, opts.pipeline, rng);
    std::string archive;
    memos::bench::check(importer->export_cube("src",
                                              [&](std::string_view bytes) {
                                                archive.append(bytes);
                                                return true;
                                              }),
                        "export");
    std::cerr << "archive of " << opts.items << " items: " << archive.size() << " bytes\n";

    // The import, timed; the adds run for as long as it does.
    std::atomic<bool> stop{false};
    std::size_t at = 0;
    auto started = Clock::now();
    std::cerr << "import starts\n";
    auto adds = std::async(std::launch::async, [&] { return timed_adds(*other, stop); });
    memos::bench::check(importer->import_cube(
                            [&](char* buf, std::size_t n) {
                              std::size_t take = std::min(n, archive.size() - at);
                              std::memcpy(buf, archive.data() + at, take);
                              at += take;
                              return take;
                            },
                            "copy"),
                        "import");
    const double import_seconds = seconds_since(started);
    stop = true;
    std::vector<double> during = adds.get();

    // The baseline: as long again, with nothing else going on.
    stop = false;
    auto idle = std::async(std::launch::async, [&] { return timed_adds(*other, stop); });
    std::this_thread::sleep_for(std::chrono::duration<double>(import_seconds));
    stop = true;
    report("idle", idle.get(), 0);
    report("during-import", during, import_seconds);
  }
  stop_daemon(daemon);
  std::cerr << "memosd's log:\n" << daemon.log();
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-import-stall", kUsage, argc, argv, parse_options, run);
}
