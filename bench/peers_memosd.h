// peers_memosd.h — memosd's side of bench-peers, through the C++ SDK:
// durable adds from 1 and 16 writers, search at each scale in each mode,
// its footprint there, and recall@10 on LoCoMo dev. Each phase gets a fresh
// memosd on a temporary socket and data folder, so no phase sees another's
// data; the peers (bench/peers/peers.mjs) are measured the same way.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_daemon.h"
#include "bench/peers_export.h"
#include "bench/peers_figures.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"
#include "tests/support/raw_connection.h"

namespace memos::bench::peers {

inline constexpr std::string_view kMemosdDurability =
    "fsynced before the answer (LMDB, group commit)";
inline constexpr std::size_t kPipeline = 256;
inline constexpr std::size_t kWarmupQueries = 50;
inline constexpr std::uint32_t kRecallK = 10;
inline constexpr auto kAddWarmup = std::chrono::milliseconds(500);
inline constexpr SearchMode kModes[] = {SearchMode::dense, SearchMode::lexical, SearchMode::hybrid};

// How long each part runs, as bench-peers' options say.
struct Settings {
  std::string memosd;
  std::size_t queries = 1000;   // at most, per search run
  double add_seconds = 3;       // each timed add window
  double search_seconds = 30;   // a search run also ends after this long
  std::uint32_t dimension = 0;  // the exported vectors'; a cube must match
};

// ---- footprint -------------------------------------------------------------

// A figure of a process's memory (resident_kib's fields), in bytes.
inline double resident_bytes(pid_t pid, const std::string& field = "VmRSS") {
  return static_cast<double>(testing::resident_kib(pid, field)) * 1024;
}

// Disk space the files under `dir` take, as du counts it (allocated blocks:
// a sparse map file counts what it holds, not its length).
inline double disk_bytes(const std::filesystem::path& dir) {
  double total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (entry.is_regular_file() && ::stat(entry.path().c_str(), &st) == 0)
      total += static_cast<double>(st.st_blocks) * 512;
  }
  return total;
}

inline Figure memosd_figure(std::string_view phase) {
  Figure f;
  f.system = "memosd";
  f.phase = std::string(phase);
  f.durability = kMemosdDurability;
  return f;
}

// A fresh memosd with one cube, "peers", checked to embed at the dimension
// the peers' vectors have.
class FreshDaemon {
 public:
  explicit FreshDaemon(const Settings& settings) : daemon_(settings.memosd, dir_.path()) {
    start_daemon(daemon_, settings.memosd);
    client_ = connect_client(daemon_.socket());
    Cube cube = create_cube(*client_, "peers");
    if (cube.dimension != settings.dimension)
      throw std::runtime_error("memosd's cube embeds at dimension " +
                               std::to_string(cube.dimension) + ", the exported vectors at " +
                               std::to_string(settings.dimension));
  }
  void stop() {
    client_.reset();
    stop_daemon(daemon_);
  }
  Client& client() { return *client_; }
  const testing::MemosdProcess& process() const { return daemon_; }
  static constexpr const char* kCube = "peers";

 private:
  testing::TempDir dir_;
  testing::MemosdProcess daemon_;
  std::unique_ptr<Client> client_;
};

// ---- adds ------------------------------------------------------------------

// `writers` threads, each with its own connection and one blocking add in
// flight, writer w adding texts w, w + writers, ...; the adds completing in
// the timed window (after a warm-up) count.
inline Figure memosd_adds(const Settings& settings, const std::vector<std::string>& texts,
                          std::size_t writers) {
  FreshDaemon daemon(settings);
  auto begin = Clock::now() + kAddWarmup;
  auto end = begin + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(settings.add_seconds));
  std::vector<std::vector<double>> latencies(writers);
  std::vector<std::string> errors(writers);
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      try {
        auto client = connect_client(daemon.process().socket());
        for (std::size_t i = w; Clock::now() < end; i += writers) {
          NewItem item;
          item.text = texts[i % texts.size()];
          item.allow_duplicate = true;  // a synthetic sentence may come twice: store each
          auto start = Clock::now();
          check(client->add(FreshDaemon::kCube, std::move(item)), "add");
          auto done = Clock::now();
          if (done >= begin && done < end)
            latencies[w].push_back(std::chrono::duration<double, std::micro>(done - start).count());
        }
      } catch (const std::exception& e) {
        errors[w] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& error : errors)
    if (!error.empty()) throw std::runtime_error(error);
  daemon.stop();

  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  Figure f = memosd_figure("add");
  f.writers = static_cast<double>(writers);
  f.items = static_cast<double>(all.size());
  f.adds_per_s = static_cast<double>(all.size()) / settings.add_seconds;
  LatencyStats stats = summarize(std::move(all));
  f.p50_us = stats.p50;
  f.p99_us = stats.p99;
  return f;
}

// ---- search and footprint --------------------------------------------------

// Warm-up, then the queries one at a time, each timed on its own, until
// they or the time run out.
template <class Search>
Figure time_queries(const Settings& settings, const std::vector<std::string>& queries,
                    Search&& search) {
  // Warm-up: kWarmupQueries, or a third of the time the timed run may take.
  auto warmup_start = Clock::now();
  for (std::size_t i = 0;
       i < kWarmupQueries && seconds_since(warmup_start) < settings.search_seconds / 3; ++i)
    search(queries[i % queries.size()]);
  std::vector<double> latencies;
  auto start = Clock::now();
  for (std::size_t i = 0; i < std::min(settings.queries, queries.size()); ++i) {
    if (seconds_since(start) > settings.search_seconds) break;
    auto t0 = Clock::now();
    search(queries[i]);
    latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  Figure f = memosd_figure("search");
  f.queries = static_cast<double>(latencies.size());
  LatencyStats stats = summarize(std::move(latencies));
  f.p50_us = stats.p50;
  f.p99_us = stats.p99;
  return f;
}

// The first `scale` memories, pipelined in, then each mode's search; the
// footprint is taken after the searches, as a store in use.
inline std::vector<Figure> memosd_search(const Settings& settings, const PeerData& data,
                                         std::size_t scale) {
  FreshDaemon daemon(settings);
  std::vector<NewItem> items;
  items.reserve(scale);
  for (std::size_t i = 0; i < scale; ++i) {
    NewItem& item = items.emplace_back();
    item.text = data.synthetic.memories[i].text;
    item.allow_duplicate = true;
  }
  double load_s = add_pipelined(daemon.client(), FreshDaemon::kCube, items, scale, kPipeline);
  double index_s = wait_until_indexed(daemon.client(), FreshDaemon::kCube);
  std::cerr << "bench-peers: memosd loaded " << scale << " memories in " << load_s
            << " s, searchable " << index_s << " s later\n";

  std::vector<Figure> figures;
  for (SearchMode mode : kModes) {
    SearchOptions options;
    options.k = kRecallK;
    options.mode = mode;
    Figure f = time_queries(settings, data.synthetic.queries, [&](const std::string& query) {
      check(daemon.client().search(FreshDaemon::kCube, query, options), "search");
    });
    f.mode = to_string(mode);
    f.items = static_cast<double>(scale);
    figures.push_back(f);
  }
  Figure footprint = memosd_figure("footprint");
  footprint.items = static_cast<double>(scale);
  pid_t pid = daemon.process().pid();
  footprint.rss_mb = resident_bytes(pid) / 1e6;
  std::cerr << "bench-peers: memosd at " << scale << ": " << resident_bytes(pid, "RssAnon") / 1e6
            << " MB anonymous, " << resident_bytes(pid, "RssFile") / 1e6 << " MB of files\n";
  footprint.disk_mb = disk_bytes(daemon.process().data_dir()) / 1e6;
  figures.push_back(footprint);
  daemon.stop();
  return figures;
}

// ---- recall ----------------------------------------------------------------

// recall@10 of one question: the share of its evidence in the top 10.
inline double recall_at_10(const locomo::Question& q, const std::vector<std::string>& ranked) {
  std::size_t found = 0;
  for (const std::string& id : q.evidence)
    if (std::find(ranked.begin(), ranked.end(), id) != ranked.end()) ++found;
  return static_cast<double>(found) / static_cast<double>(q.evidence.size());
}

// Every dev conversation in a fresh memosd (as locomo-recall adds it), each
// question searched in each mode with k = 10.
inline std::vector<Figure> memosd_recall(const Settings& settings, const PeerData& data) {
  std::array<double, std::size(kModes)> sums{};
  std::size_t questions = 0, turns = 0;
  for (const locomo::Conversation& conv : data.conversations) {
    locomo::ConversationDaemon daemon(settings.memosd, "", conv);
    for (std::size_t m = 0; m < std::size(kModes); ++m) {
      SearchOptions options;
      options.k = kRecallK;
      options.mode = kModes[m];
      for (const locomo::Question& q : conv.questions) {
        auto hits = daemon.client().search(daemon.cube(), q.text, options);
        check(hits, "search");
        std::vector<std::string> ranked;
        for (const Hit& hit : *hits) ranked.push_back(daemon.dia_id(hit.item.id));
        sums[m] += recall_at_10(q, ranked);
      }
    }
    questions += conv.questions.size();
    turns += conv.turns.size();
    daemon.stop();
  }
  std::vector<Figure> figures;
  for (std::size_t m = 0; m < std::size(kModes); ++m) {
    Figure f = memosd_figure("recall");
    f.mode = to_string(kModes[m]);
    f.items = static_cast<double>(turns);
    f.queries = static_cast<double>(questions);
    f.recall_at_10 = sums[m] / static_cast<double>(std::max<std::size_t>(questions, 1));
    figures.push_back(f);
  }
  return figures;
}

}  // namespace memos::bench::peers
