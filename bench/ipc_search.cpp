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
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "memos/client.h"
#include "plugins/hash-embedder/hash_embedder.h"
#include "tests/support/memosd_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using Rng = std::mt19937_64;
// FAISS 1.7.3 names its id type faiss::Index::idx_t (later releases move it).
using FaissId = faiss::Index::idx_t;

constexpr std::string_view kUsage =
    "usage: bench-ipc-search --memosd PATH [--items N] [--queries Q] [--k K]\n"
    "                        [--pipeline P] [--seed S]\n";

constexpr std::size_t kVocabularySize = 4000;
constexpr std::size_t kMinMemoryWords = 8, kMaxMemoryWords = 30;
constexpr std::size_t kMinQueryWords = 3, kMaxQueryWords = 8;
constexpr std::size_t kWarmupQueries = 50;
// Queries whose top score is compared between the daemon and in process.
constexpr std::size_t kCheckedQueries = 20;
// Both sides run the same embedder and an exact search over the same vectors,
// so their top scores differ at most by float rounding.
constexpr float kScoreTolerance = 1e-4f;
constexpr std::size_t kMaxSequentialItems = 1000;

constexpr std::string_view kTags[] = {"work",    "home", "travel", "health",  "finance", "family",
                                      "project", "idea", "todo",   "meeting", "reading", "music"};

struct Options {
  std::string memosd;
  std::size_t items = 10000;
  std::size_t queries = 1000;
  std::uint32_t k = 10;
  std::size_t pipeline = 256;
  std::uint64_t seed = 42;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- options ---------------------------------------------------------------

std::uint64_t parse_positive(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) {
    throw UsageError(std::string(flag) + " needs a positive integer, not '" + std::string(text) +
                     "'");
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") throw UsageError("benchmarks memosd's add and search");
    if (i + 1 >= argc) throw UsageError(std::string(flag) + " needs a value");
    std::string_view value = argv[++i];
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
      // 0 is a fine seed, so not parse_positive.
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), opts.seed);
      if (ec != std::errc() || end != value.data() + value.size()) {
        throw UsageError("--seed needs an unsigned integer");
      }
    } else {
      throw UsageError("unknown option " + std::string(flag));
    }
  }
  if (opts.memosd.empty()) throw UsageError("--memosd is required");
  return opts;
}

// ---- synthetic workload ----------------------------------------------------
//
// The standard distributions are implementation-defined, so these small
// helpers keep the workload identical across standard libraries for a seed.

std::size_t uniform_index(Rng& rng, std::size_t lo, std::size_t hi) {  // [lo, hi]
  return lo + static_cast<std::size_t>(rng() % (hi - lo + 1));
}

double unit_interval(Rng& rng) {  // [0, 1)
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Pronounceable pseudo-words ("kelamo") so the embedder's stemming and
// trigrams see word-like text; unique so the vocabulary size is exact.
std::vector<std::string> make_vocabulary(Rng& rng, std::size_t size) {
  constexpr std::string_view kConsonants = "bcdfghjklmnprstvwz";
  constexpr std::string_view kVowels = "aeiou";
  std::vector<std::string> words;
  std::unordered_set<std::string> seen;
  while (words.size() < size) {
    std::string word;
    for (std::size_t s = uniform_index(rng, 2, 4); s > 0; --s) {
      word += kConsonants[uniform_index(rng, 0, kConsonants.size() - 1)];
      word += kVowels[uniform_index(rng, 0, kVowels.size() - 1)];
    }
    if (seen.insert(word).second) words.push_back(std::move(word));
  }
  return words;
}

// Draws ranks 0..n-1 with probability proportional to 1/(rank+1), like word
// frequencies in natural text: a few words are everywhere, most are rare.
class ZipfSampler {
 public:
  explicit ZipfSampler(std::size_t n) : cdf_(n) {
    double total = 0;
    for (std::size_t r = 0; r < n; ++r) cdf_[r] = total += 1.0 / static_cast<double>(r + 1);
    for (double& c : cdf_) c /= total;
  }
  std::size_t operator()(Rng& rng) const {
    auto it = std::upper_bound(cdf_.begin(), cdf_.end(), unit_interval(rng));
    return std::min(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

struct Workload {
  std::vector<memos::NewItem> memories;
  std::vector<std::string> queries;
};

std::string make_sentence(Rng& rng, const std::vector<std::string>& vocabulary,
                          const ZipfSampler& zipf, std::size_t min_words, std::size_t max_words) {
  std::string text;
  for (std::size_t n = uniform_index(rng, min_words, max_words); n > 0; --n) {
    if (!text.empty()) text += ' ';
    text += vocabulary[zipf(rng)];
  }
  return text;
}

// One or two distinct tags: memosd refuses a tag given twice.
std::vector<std::string> make_tags(Rng& rng) {
  constexpr std::size_t kTagCount = std::size(kTags);
  std::size_t first = uniform_index(rng, 0, kTagCount - 1);
  std::vector<std::string> tags{std::string(kTags[first])};
  if (uniform_index(rng, 0, 1) == 1) {
    std::size_t second = (first + uniform_index(rng, 1, kTagCount - 1)) % kTagCount;
    tags.emplace_back(kTags[second]);
  }
  return tags;
}

Workload make_workload(const Options& opts) {
  // Separate streams, so the queries for a seed do not depend on --items.
  Rng vocabulary_rng(opts.seed), memory_rng(opts.seed + 1), query_rng(opts.seed + 2);
  std::vector<std::string> vocabulary = make_vocabulary(vocabulary_rng, kVocabularySize);
  ZipfSampler zipf(vocabulary.size());
  Workload work;
  work.memories.reserve(opts.items);
  for (std::size_t i = 0; i < opts.items; ++i) {
    memos::NewItem item;
    item.text = make_sentence(memory_rng, vocabulary, zipf, kMinMemoryWords, kMaxMemoryWords);
    item.tags = make_tags(memory_rng);
    work.memories.push_back(std::move(item));
  }
  work.queries.reserve(opts.queries);
  for (std::size_t i = 0; i < opts.queries; ++i) {
    work.queries.push_back(
        make_sentence(query_rng, vocabulary, zipf, kMinQueryWords, kMaxQueryWords));
  }
  return work;
}

// ---- results ---------------------------------------------------------------

// One JSON object on one line of stdout. Keys and string values are our own
// constants, so they need no escaping.
class JsonLine {
 public:
  JsonLine& str(std::string_view key, std::string_view value) {
    return raw(key, "\"" + std::string(value) + "\"");
  }
  JsonLine& count(std::string_view key, std::uint64_t value) {
    return raw(key, std::to_string(value));
  }
  JsonLine& num(std::string_view key, double value, int decimals = 3) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*f", decimals, std::isfinite(value) ? value : 0.0);
    return raw(key, buf);
  }
  void print() const { std::cout << '{' << text_ << '}' << std::endl; }

 private:
  JsonLine& raw(std::string_view key, std::string_view value) {
    if (!text_.empty()) text_ += ',';
    text_ += '"';
    text_ += key;
    text_ += "\":";
    text_ += value;
    return *this;
  }
  std::string text_;
};

JsonLine bench_line(std::string_view phase) {
  JsonLine line;
  line.str("bench", "ipc-search").str("phase", phase);
  return line;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct LatencyStats {
  double p50_us = 0, p99_us = 0, mean_us = 0;
};

// Nearest-rank percentiles: always a latency that was actually observed.
LatencyStats summarize(std::vector<double> latencies_us) {
  std::sort(latencies_us.begin(), latencies_us.end());
  auto percentile = [&](double p) {
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(latencies_us.size())));
    return latencies_us[std::max<std::size_t>(rank, 1) - 1];
  };
  double sum = 0;
  for (double l : latencies_us) sum += l;
  return {percentile(0.50), percentile(0.99), sum / static_cast<double>(latencies_us.size())};
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
      .num("p50_us", s.p50_us)
      .num("p99_us", s.p99_us)
      .num("mean_us", s.mean_us)
      .print();
}

// ---- through memosd --------------------------------------------------------

void check(const memos::Result<memos::Item>& r, std::string_view what) {
  if (!r.ok()) {
    throw std::runtime_error(std::string(what) + " failed: " + memos::to_string(r.error().code) +
                             ": " + r.error().message);
  }
}

// Adds `count` memories keeping up to `pipeline` requests in flight: a
// sliding window, refilled as the oldest reply arrives, so the daemon's
// group commit has a batch to work on. Returns the seconds taken.
double add_all(memos::Client& client, const std::string& cube,
               const std::vector<memos::NewItem>& memories, std::size_t count,
               std::size_t pipeline) {
  std::deque<std::future<memos::Result<memos::Item>>> window;
  auto start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    if (window.size() >= pipeline) {
      check(window.front().get(), "add");
      window.pop_front();
    }
    window.push_back(client.add_async(cube, memories[i]));
  }
  for (auto& f : window) check(f.get(), "add");
  return seconds_since(start);
}

void print_add(std::size_t items, std::size_t pipeline, double seconds) {
  bench_line("add")
      .count("items", items)
      .count("pipeline", pipeline)
      .num("seconds", seconds, 6)
      .num("adds_per_s", static_cast<double>(items) / seconds)
      .print();
}

memos::Cube create_cube(memos::Client& client, const std::string& name) {
  auto cube = client.cube_create(name);
  if (!cube.ok()) {
    throw std::runtime_error("cube_create " + name + " failed: " + cube.error().message);
  }
  return cube.value();
}

struct DaemonResults {
  double adds_per_s = 0;
  std::uint32_t dimension = 0;
  SearchRun search;
};

DaemonResults bench_daemon(memos::Client& client, const Workload& work, const Options& opts) {
  DaemonResults out;
  memos::Cube cube = create_cube(client, "bench");
  out.dimension = cube.dimension;
  std::cerr << "adding " << opts.items << " memories, " << opts.pipeline << " in flight\n";
  double seconds = add_all(client, cube.name, work.memories, opts.items, opts.pipeline);
  out.adds_per_s = static_cast<double>(opts.items) / seconds;
  print_add(opts.items, opts.pipeline, seconds);

  // A second cube, so the sequential adds do not change what is searched.
  std::size_t sequential = std::min(opts.items / 10, kMaxSequentialItems);
  if (sequential > 0) {
    std::cerr << "adding " << sequential << " memories one at a time\n";
    memos::Cube seq_cube = create_cube(client, "bench-sequential");
    print_add(sequential, 1, add_all(client, seq_cube.name, work.memories, sequential, 1));
  }

  memos::SearchOptions search_opts;
  search_opts.k = opts.k;
  std::cerr << "searching " << opts.queries << " queries through memosd\n";
  out.search = time_searches(work.queries, [&](const std::string& query) {
    auto hits = client.search(cube.name, query, search_opts);
    if (!hits.ok()) throw std::runtime_error("search failed: " + hits.error().message);
    return hits->empty() ? std::nullopt : std::optional<float>(hits->front().score);
  });
  print_search("memosd", opts, out.search.stats);
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
      .num("daemon_p50_us", d.p50_us)
      .num("inproc_p50_us", p.p50_us)
      .num("p50_ratio", d.p50_us / p.p50_us)
      .num("daemon_p99_us", d.p99_us)
      .num("inproc_p99_us", p.p99_us)
      .num("p99_ratio", d.p99_us / p.p99_us)
      .num("top1_agree", top1_agreement(daemon.search, inproc))
      .print();
}

// ---- the run ---------------------------------------------------------------

void run(const Options& opts) {
  // The daemon starts first, so a wrong --memosd fails before any work.
  memos::testing::TempDir dir;
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path());
  if (!daemon.start()) {
    throw std::runtime_error("memosd (" + opts.memosd + ") did not start:\n" + daemon.log());
  }
  auto connected = memos::Client::connect(daemon.socket());
  if (!connected.ok()) throw std::runtime_error("connect failed: " + connected.error().message);
  std::unique_ptr<memos::Client> client = std::move(connected.value());

  std::cerr << "generating " << opts.items << " memories and " << opts.queries << " queries\n";
  Workload work = make_workload(opts);

  DaemonResults daemon_results = bench_daemon(*client, work, opts);
  SearchRun inproc = bench_inprocess(work, opts, daemon_results.dimension);
  print_summary(opts, daemon_results, inproc);

  // Close the connection first: the exit status should reflect an ordinary
  // shutdown, not one racing a client's open requests.
  client.reset();
  int status = daemon.stop(SIGTERM);
  if (status != 0) {
    throw std::runtime_error("memosd exited with status " + std::to_string(status) + ":\n" +
                             daemon.log());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Errors are exceptions rather than exit(), so that the daemon and its
  // temporary folder are cleaned up by their destructors.
  try {
    run(parse_options(argc, argv));
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "bench-ipc-search: " << e.what() << '\n' << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench-ipc-search: " << e.what() << '\n';
    return 1;
  }
}
