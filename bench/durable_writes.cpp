// durable_writes.cpp — bench-durable-writes: what group commit buys.
//
// memosd acknowledges a write only once it is durable, so every commit waits
// for the data folder's filesystem to sync. This first measures that limit,
// the raw fdatasync rate of the filesystem, then runs W concurrent writers
// against a fresh memosd with group commit on and off. Each writer has its
// own connection and exactly one blocking add in flight, like agents that
// each wait for their write before going on. With group commit the writer
// thread commits every add waiting in one transaction, so throughput grows
// with W past the fsync rate; without it every add pays for its own commit.
// Results are JSON objects, one per line, on stdout; notes go to stderr.
// Usage: see kUsage.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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
using memos::bench::LatencyStats;
using memos::bench::make_sentence;
using memos::bench::make_tags;
using memos::bench::make_vocabulary;
using memos::bench::parse_positive_list;
using memos::bench::parse_seconds;
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
    "usage: bench-durable-writes --memosd PATH [--seconds S] [--writers W1,W2,...]\n"
    "                            [--seed S]\n";

constexpr double kFsyncProbeSeconds = 2.0;
constexpr std::size_t kFsyncBlockBytes = 4096;
// Fills the daemon's caches and the writers' queue before timing starts.
constexpr auto kWarmup = std::chrono::milliseconds(500);
// The writer count the summary compares at.
constexpr std::size_t kSummaryWriters = 64;
// 10 to 18 pseudo-words of about 6 letters: sentences of about 100 bytes.
constexpr std::size_t kVocabularySize = 4000;
constexpr std::size_t kMinWords = 10, kMaxWords = 18;
constexpr std::string_view kCubeName = "durable";

struct Options {
  std::string memosd;
  double seconds = 3;
  std::vector<std::size_t> writers = {1, 8, 64};
  std::uint64_t seed = 42;
};

// ---- options ---------------------------------------------------------------

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "benchmarks memosd's durable writes with and without group commit",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--seconds") {
                   opts.seconds = parse_seconds(flag, value);
                 } else if (flag == "--writers") {
                   opts.writers = parse_positive_list(flag, value);
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

JsonLine bench_line(std::string_view phase) {
  JsonLine line;
  line.str("bench", "durable-writes").str("phase", phase);
  return line;
}

// ---- the filesystem's limit ------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

void write_and_sync(int fd, const std::vector<char>& block) {
  if (pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size())) {
    throw_errno("fsync probe: pwrite");
  }
  if (fdatasync(fd) != 0) throw_errno("fsync probe: fdatasync");
}

// Rewrites one 4 KiB block in place and syncs it, over and over: the
// cheapest durable write the filesystem offers, so no commit can beat its
// rate. The folder is made like the daemon's, so it is on the same
// filesystem as the daemon's data folder.
double measure_fsync_rate() {
  memos::testing::TempDir dir;
  std::string path = dir.path() + "/fsync-probe";
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw_errno("fsync probe: open " + path);
  std::vector<char> block(kFsyncBlockBytes, 'x');
  // The first sync also allocates the block and writes the file's metadata.
  write_and_sync(fd.get(), block);

  std::uint64_t syncs = 0;
  auto start = Clock::now();
  double seconds = 0;
  do {
    write_and_sync(fd.get(), block);
    ++syncs;
  } while ((seconds = seconds_since(start)) < kFsyncProbeSeconds);
  double per_s = static_cast<double>(syncs) / seconds;
  bench_line("fsync")
      .count("fsyncs", syncs)
      .num("seconds", seconds, 6)
      .num("fsync_per_s", per_s)
      .print();
  return per_s;
}

// ---- concurrent writers ----------------------------------------------------

// Only adds that complete inside [begin, end) count, however long ago they
// started: counting completions gives the steady-state rate, where counting
// adds that also started inside would miss one per writer at the start.
struct Window {
  Clock::time_point begin, end;
};

// The first failure of any writer; the others stop at their next add.
class FirstError {
 public:
  void set(std::string message) {
    std::lock_guard lock(mutex_);
    if (!message_) message_ = std::move(message);
    failed_ = true;
  }
  bool failed() const { return failed_; }
  std::optional<std::string> get() const {
    std::lock_guard lock(mutex_);
    return message_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<std::string> message_;
  std::atomic<bool> failed_ = false;
};

// The memories one writer adds. Each writer draws from its own seeded stream,
// so its texts do not depend on thread scheduling and are the same with and
// without group commit.
class TextSource {
 public:
  TextSource(const std::vector<std::string>& vocabulary, const ZipfSampler& zipf,
             std::uint64_t seed)
      : vocabulary_(vocabulary), zipf_(zipf), rng_(seed) {}
  memos::NewItem next() {
    memos::NewItem item;
    item.text = make_sentence(rng_, vocabulary_, zipf_, kMinWords, kMaxWords);
    item.tags = make_tags(rng_);
    item.allow_duplicate = true;  // a synthetic sentence may come twice: store each
    return item;
  }

 private:
  const std::vector<std::string>& vocabulary_;
  const ZipfSampler& zipf_;
  Rng rng_;
};

// One writer: blocking adds one after another until the window closes.
// Returns the latencies, in milliseconds, of the adds that count.
std::vector<double> run_writer(memos::Client& client, TextSource texts, const Window& window,
                               FirstError& error) {
  std::vector<double> latencies_ms;
  const std::string cube(kCubeName);
  while (!error.failed()) {
    memos::NewItem item = texts.next();  // made outside the timed call
    auto start = Clock::now();
    if (start >= window.end) break;
    auto added = client.add(cube, std::move(item));
    auto done = Clock::now();
    if (!added.ok()) {
      error.set("add failed: " + std::string(memos::to_string(added.error().code)) + ": " +
                added.error().message);
      break;
    }
    if (done >= window.begin && done < window.end) {
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(done - start).count());
    }
  }
  return latencies_ms;
}

// Runs `clients.size()` writers at once; returns all counted latencies.
std::vector<double> run_writers(const std::vector<std::unique_ptr<memos::Client>>& clients,
                                const std::vector<std::string>& vocabulary, const Options& opts) {
  ZipfSampler zipf(vocabulary.size());
  auto begin = Clock::now() + kWarmup;
  Window window{begin, begin + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(opts.seconds))};
  FirstError error;
  std::vector<std::vector<double>> latencies(clients.size());
  {
    std::vector<std::jthread> threads;
    for (std::size_t w = 0; w < clients.size(); ++w) {
      // Stream 0 made the vocabulary; writer w draws from stream w + 1.
      TextSource texts(vocabulary, zipf, opts.seed + 1 + w);
      threads.emplace_back([&, w, texts]() mutable {
        latencies[w] = run_writer(*clients[w], std::move(texts), window, error);
      });
    }
  }  // joins
  if (auto message = error.get()) throw std::runtime_error(*message);
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return all;
}

// The config file that sets the commit mode; everything else is the default.
std::string write_config(const std::string& dir, bool group_commit) {
  std::string path = dir + "/memosd.conf";
  std::ofstream out(path);
  out << "[store]\ngroup_commit = " << (group_commit ? "true" : "false") << '\n';
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
  return path;
}

// One fresh daemon, one cube, `writers` connections adding at once. Returns
// the adds per second.
double bench_writers(const Options& opts, bool group_commit, std::size_t writers,
                     const std::vector<std::string>& vocabulary) {
  std::cerr << writers << " writer(s), group commit " << (group_commit ? "on" : "off") << '\n';
  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path(),
                                       {"--config", write_config(dir.path(), group_commit)});
  start_daemon(daemon, opts.memosd);
  std::vector<std::unique_ptr<memos::Client>> clients;
  for (std::size_t w = 0; w < writers; ++w) clients.push_back(connect_client(daemon.socket()));
  create_cube(*clients.front(), std::string(kCubeName));

  std::vector<double> latencies_ms = run_writers(clients, vocabulary, opts);
  std::size_t adds = latencies_ms.size();
  if (adds == 0) std::cerr << "warning: no add completed in the measured window\n";
  double adds_per_s = static_cast<double>(adds) / opts.seconds;
  LatencyStats stats = summarize(std::move(latencies_ms));
  bench_line("writes")
      .count("writers", writers)
      .boolean("group_commit", group_commit)
      .count("adds", adds)
      .num("adds_per_s", adds_per_s)
      .num("p50_ms", stats.p50)
      .num("p99_ms", stats.p99)
      .print();

  clients.clear();  // before stopping: see stop_daemon
  stop_daemon(daemon);
  return adds_per_s;
}

// ---- the run ---------------------------------------------------------------

void print_summary(double fsync_per_s, double group_per_s, double single_per_s) {
  bench_line("summary")
      .num("fsync_per_s", fsync_per_s)
      .num("group_64_adds_per_s", group_per_s)
      .num("single_64_adds_per_s", single_per_s)
      .num("speedup_64", group_per_s / single_per_s)
      .num("adds_per_fsync_64", group_per_s / fsync_per_s)
      .print();
}

void run(const Options& opts) {
  // A wrong --memosd should fail at once, not after the fsync probe.
  if (access(opts.memosd.c_str(), X_OK) != 0) throw_errno("memosd (" + opts.memosd + ")");
  std::cerr << "measuring the fsync rate for " << kFsyncProbeSeconds << " s\n";
  double fsync_per_s = measure_fsync_rate();

  Rng vocabulary_rng(opts.seed);
  std::vector<std::string> vocabulary = make_vocabulary(vocabulary_rng, kVocabularySize);
  std::map<std::pair<bool, std::size_t>, double> adds_per_s;  // (group commit, writers)
  for (bool group_commit : {true, false}) {
    for (std::size_t writers : opts.writers) {
      adds_per_s[{group_commit, writers}] = bench_writers(opts, group_commit, writers, vocabulary);
    }
  }

  if (!adds_per_s.contains({true, kSummaryWriters})) {
    std::cerr << "no summary: it compares " << kSummaryWriters << " writers, not measured\n";
    return;
  }
  print_summary(fsync_per_s, adds_per_s[{true, kSummaryWriters}],
                adds_per_s[{false, kSummaryWriters}]);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-durable-writes", kUsage, argc, argv, parse_options, run);
}
