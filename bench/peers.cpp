// peers.cpp — bench-peers: memosd side by side with the stores an agent's
// developer would otherwise pick: LanceDB and SQLite (FTS5) embedded in a
// Node program, hnswlib and usearch as in-process vector indexes, the
// reference MCP memory server, and memosd itself through MCP (memos-mcp).
//
// One run exports the workload (peers_export.h: the same texts for all, and
// the same hash-v1 vectors for the vector engines), measures memosd through
// the C++ SDK (peers_memosd.h), runs bench/peers/peers.mjs once per peer
// (its packages pinned by bench/peers/package-lock.json) and passes its
// lines through, then prints one summary line per aim of issue 21: durable
// adds at 16 writers, search p50 at the largest scale, recall@10 on LoCoMo
// dev, resident memory there. Every line is a JSON object on stdout
// (peers_figures.h); notes go to stderr. Usage: see kUsage.

#include <stdio.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "bench/locomo_data.h"
#include "bench/peers_export.h"
#include "bench/peers_figures.h"
#include "bench/peers_memosd.h"
#include "bench/synthetic_text.h"
#include "plugins/hash-embedder/hash_embedder.h"
#include "tests/support/memosd_process.h"

namespace {

namespace fs = std::filesystem;
using memos::bench::parse_positive;
using memos::bench::parse_positive_list;
using memos::bench::parse_seconds;
using memos::bench::parse_unsigned;
using memos::bench::read_options;
using memos::bench::UsageError;
using memos::bench::peers::Figure;
using memos::bench::peers::PeerData;
using memos::bench::peers::Settings;

constexpr std::string_view kUsage =
    "usage: bench-peers --memosd PATH [--systems LIST] [--scales N1,N2] [--queries Q]\n"
    "                   [--seconds S] [--search-seconds S] [--seed S] [--data DIR]\n"
    "                   [--source DIR] [--node PATH] [--work DIR]\n"
    "systems: memosd memos-mcp lancedb sqlite hnswlib usearch server-memory\n";

constexpr std::string_view kAllSystems[] = {"memosd",  "memos-mcp", "lancedb",      "sqlite",
                                            "hnswlib", "usearch",   "server-memory"};
// memosd's embedder's own dimension, which its cubes take by default.
constexpr std::uint32_t kDimension = 256;
constexpr std::size_t kSummaryWriters = 16;

struct Options {
  Settings settings;
  std::vector<std::string> systems{std::begin(kAllSystems), std::end(kAllSystems)};
  std::vector<std::size_t> scales = {10000, 100000};
  std::uint64_t seed = 42;
  std::string locomo{memos::bench::locomo::kDefaultDataDir};
  std::string source = ".";  // the repository: bench/peers, bridges/mcp, sdk/python
  std::string node = "node";
  std::string work;  // kept: the exported data and the peers' stores; empty: a temporary folder
};

std::vector<std::string> parse_systems(std::string_view text) {
  std::vector<std::string> systems;
  while (!text.empty()) {
    std::string_view name = text.substr(0, text.find(','));
    if (std::find(std::begin(kAllSystems), std::end(kAllSystems), name) == std::end(kAllSystems))
      throw UsageError("unknown system '" + std::string(name) + "'");
    systems.emplace_back(name);
    text.remove_prefix(std::min(text.size(), name.size() + 1));
  }
  if (systems.empty()) throw UsageError("--systems needs at least one system");
  return systems;
}

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "compares memosd with the stores agents use instead",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.settings.memosd = value;
                 } else if (flag == "--systems") {
                   opts.systems = parse_systems(value);
                 } else if (flag == "--scales") {
                   opts.scales = parse_positive_list(flag, value);
                 } else if (flag == "--queries") {
                   opts.settings.queries = parse_positive(flag, value);
                 } else if (flag == "--seconds") {
                   opts.settings.add_seconds = parse_seconds(flag, value);
                 } else if (flag == "--search-seconds") {
                   opts.settings.search_seconds = parse_seconds(flag, value);
                 } else if (flag == "--seed") {
                   opts.seed = parse_unsigned(flag, value);
                 } else if (flag == "--data") {
                   opts.locomo = value;
                 } else if (flag == "--source") {
                   opts.source = value;
                 } else if (flag == "--work") {
                   opts.work = value;
                 } else if (flag == "--node") {
                   opts.node = value;
                 } else {
                   return false;
                 }
                 return true;
               });
  if (opts.settings.memosd.empty()) throw UsageError("--memosd is required");
  std::sort(opts.scales.begin(), opts.scales.end());
  opts.scales.erase(std::unique(opts.scales.begin(), opts.scales.end()), opts.scales.end());
  opts.settings.dimension = kDimension;
  return opts;
}

// ---- the peers, through bench/peers/peers.mjs ------------------------------

std::string shell_quote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// Runs the Node script for one system, its stderr going to ours, and reads
// its stdout: each line is checked, printed and kept. Throws when the script
// fails or prints a line that is no figure.
std::vector<Figure> run_peer(const Options& opts, const std::string& system,
                             const fs::path& data_dir, const fs::path& work) {
  fs::path memosd = fs::absolute(opts.settings.memosd);
  fs::path source = fs::absolute(opts.source);
  std::vector<std::string> argv = {
      opts.node,          (source / "bench/peers/peers.mjs").string(),
      "--system",         system,
      "--data",           data_dir.string(),
      "--work",           (work / system).string(),
      "--seconds",        std::to_string(opts.settings.add_seconds),
      "--queries",        std::to_string(opts.settings.queries),
      "--search-seconds", std::to_string(opts.settings.search_seconds),
      "--memosd",         memosd.string(),
      "--memos-mcp",      (source / "bridges/mcp/memos-mcp").string(),
      "--memos-library",  (memosd.parent_path().parent_path() / "sdk/libmemos.so.1").string(),
      "--pythonpath",     (source / "sdk/python").string()};
  std::string command;
  for (const std::string& word : argv) command += shell_quote(word) + ' ';
  fs::create_directories(work / system);

  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), &pclose);
  if (!pipe) throw std::runtime_error("cannot run " + opts.node);
  std::vector<Figure> figures;
  std::string line;
  for (int c; (c = fgetc(pipe.get())) != EOF;) {
    if (c != '\n') {
      line += static_cast<char>(c);
      continue;
    }
    try {
      figures.push_back(memos::bench::peers::parse_figure(line));
    } catch (const std::exception& e) {
      throw std::runtime_error(system + " printed a bad line (" + e.what() + "): " + line);
    }
    memos::bench::peers::print(figures.back());
    line.clear();
  }
  int status = pclose(pipe.release());
  if (status != 0 || !line.empty())
    throw std::runtime_error("the " + system + " run failed (bench/peers/peers.mjs; status " +
                             std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  return figures;
}

// ---- the summary -----------------------------------------------------------

// Modes of one kind compare with each other: the reference MCP server's
// substring and per-word searches are lexical searches.
std::string mode_family(const std::optional<std::string>& mode) {
  if (!mode) return "";
  if (*mode == "substring" || *mode == "words") return "lexical";
  return *mode;
}

struct Aim {
  std::string name;
  bool higher_is_better;
  int decimals;  // as the figures print it
  // The system's value for the aim from one of its figures, if it counts.
  std::function<std::optional<double>(const Figure&)> value;
};

// For each system its best value over the figures that count; then whether
// memosd is ahead of (or, for lower-is-better, at most) every peer.
void print_summary(const Aim& aim, const std::vector<Figure>& figures) {
  std::map<std::string, double> best;
  for (const Figure& f : figures) {
    std::optional<double> v = aim.value(f);
    if (!v) continue;
    auto [it, inserted] = best.try_emplace(f.system, *v);
    if (!inserted)
      it->second = aim.higher_is_better ? std::max(it->second, *v) : std::min(it->second, *v);
  }
  auto memosd = best.find("memosd");
  nlohmann::json peers = nlohmann::json::object();
  bool ahead = memosd != best.end();
  for (const auto& [system, v] : best) {
    if (system == "memosd") continue;
    peers[system] = memos::bench::peers::rounded(v, aim.decimals);
    if (ahead) ahead = aim.higher_is_better ? memosd->second > v : memosd->second <= v;
  }
  nlohmann::json line = {
      {"bench", "peers"},
      {"phase", "summary"},
      {"aim", aim.name},
      {"better", aim.higher_is_better ? "higher" : "lower"},
      {"memosd", memosd == best.end() ? nlohmann::json(nullptr)
                                      : memos::bench::peers::rounded(memosd->second, aim.decimals)},
      {"peers", peers},
      // null: nothing to compare
      {"memosd_ahead",
       peers.empty() || memosd == best.end() ? nlohmann::json(nullptr) : nlohmann::json(ahead)}};
  std::cout << line.dump() << std::endl;
}

void print_summaries(const std::vector<Figure>& figures, double largest) {
  std::vector<Aim> aims;
  // A system whose durability starts "none" does not sync before it
  // answers: its adds are not durable ones.
  aims.push_back({"durable_adds_per_s_16_writers", true, 1, [](const Figure& f) {
                    bool durable = f.durability.rfind("none", 0) != 0;
                    return f.phase == "add" && durable && f.writers == double(kSummaryWriters)
                               ? f.adds_per_s
                               : std::nullopt;
                  }});
  for (std::string family : {"dense", "lexical", "hybrid"}) {
    aims.push_back({"search_p50_us_" + family, false, 1, [family, largest](const Figure& f) {
                      return f.phase == "search" && f.items == largest &&
                                     mode_family(f.mode) == family
                                 ? f.p50_us
                                 : std::nullopt;
                    }});
  }
  aims.push_back({"recall_at_10", true, 4, [](const Figure& f) {
                    return f.phase == "recall" ? f.recall_at_10 : std::nullopt;
                  }});
  aims.push_back({"rss_mb", false, 1, [largest](const Figure& f) {
                    return f.phase == "footprint" && f.items == largest ? f.rss_mb : std::nullopt;
                  }});
  for (const Aim& aim : aims) print_summary(aim, figures);
}

// ---- the run ---------------------------------------------------------------

std::vector<Figure> run_memosd(const Options& opts, const PeerData& data) {
  using namespace memos::bench::peers;
  std::vector<Figure> figures;
  auto keep = [&](const Figure& f) {
    print(f);
    figures.push_back(f);
  };
  std::vector<std::string> texts;
  for (const auto& memory : data.synthetic.memories) texts.push_back(memory.text);
  for (std::size_t writers : {std::size_t{1}, kSummaryWriters})
    keep(memosd_adds(opts.settings, texts, writers));
  for (std::size_t scale : opts.scales)
    for (const Figure& f : memosd_search(opts.settings, data, scale)) keep(f);
  for (const Figure& f : memosd_recall(opts.settings, data)) keep(f);
  return figures;
}

void run(const Options& opts) {
  PeerData data;
  data.scales = opts.scales;
  data.seed = opts.seed;
  data.synthetic =
      memos::bench::make_search_workload(opts.seed, opts.scales.back(), opts.settings.queries);
  data.conversations = memos::bench::locomo::load_split(opts.locomo, "dev");

  std::optional<memos::testing::TempDir> temporary;
  if (opts.work.empty()) temporary.emplace();
  fs::path work = opts.work.empty() ? fs::path(temporary->path()) : fs::absolute(opts.work);
  fs::path data_dir = work / "data";
  std::cerr << "bench-peers: exporting the workload to " << data_dir << '\n';
  memos::bench::peers::write_peer_data(data_dir, data, memos::embed::HashEmbedder(kDimension));

  std::vector<Figure> figures;
  for (const std::string& system : opts.systems) {
    std::cerr << "bench-peers: " << system << '\n';
    std::vector<Figure> got =
        system == "memosd" ? run_memosd(opts, data) : run_peer(opts, system, data_dir, work);
    figures.insert(figures.end(), got.begin(), got.end());
  }
  print_summaries(figures, static_cast<double>(opts.scales.back()));
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-peers", kUsage, argc, argv, parse_options, run);
}
