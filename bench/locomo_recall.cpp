// locomo_recall.cpp — bench-locomo-recall: how well memosd finds the turns
// that answer LoCoMo's questions.
//
// Follows the judge-free retrieval protocol of the data set's README
// (shared/data/locomo/README.md): for each conversation of the split, a fresh
// memosd gets one cube holding every turn as one memory; every question of
// categories 1–4 with (corrected) evidence is searched with k = 20, and
// recall@k and hit@k are computed from the top k for k in 1, 5, 10, 20. The
// same turns and questions also go through SQLite FTS5's bm25() in memory, a
// plain lexical baseline. Results are JSON objects, one per line, on stdout;
// notes and warnings go to stderr. Usage: see kUsage.

#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "memos/client.h"
#include "tests/support/memosd_process.h"

namespace {

using memos::bench::check;
using memos::bench::connect_client;
using memos::bench::create_cube;
using memos::bench::JsonLine;
using memos::bench::read_options;
using memos::bench::start_daemon;
using memos::bench::stop_daemon;
using memos::bench::UsageError;
using Json = nlohmann::json;

constexpr std::string_view kUsage =
    "usage: bench-locomo-recall --memosd PATH [--split dev|heldout|all] [--data DIR]\n";

// shared/ lies beside the repository; scripts/bench runs from its root.
constexpr std::string_view kDefaultDataDir = "../shared/data/locomo";
// The README's splits: dev is conversations 0–2, held-out 3–9.
constexpr std::size_t kDevConversations = 3;
constexpr std::array<std::size_t, 4> kCutoffs = {1, 5, 10, 20};
constexpr std::uint32_t kSearchK = 20;
constexpr int kFirstCategory = 1, kLastCategory = 4;  // 5 (adversarial) has no answer
constexpr std::size_t kPipeline = 256;

struct Options {
  std::string memosd;
  std::string split = "dev";
  std::string data_dir{kDefaultDataDir};
  std::string config;  // a memosd.conf for the daemons under test (tuning on dev)
};

// ---- options ---------------------------------------------------------------

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "measures recall on LoCoMo",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--split") {
                   if (value != "dev" && value != "heldout" && value != "all") {
                     throw UsageError("--split must be dev, heldout or all");
                   }
                   opts.split = value;
                 } else if (flag == "--data") {
                   opts.data_dir = value;
                 } else if (flag == "--config") {
                   opts.config = value;
                 } else {
                   return false;
                 }
                 return true;
               });
  if (opts.memosd.empty()) throw UsageError("--memosd is required");
  return opts;
}

// ---- the data set ----------------------------------------------------------

struct Turn {
  std::string dia_id;  // "D<session>:<turn>"
  std::string text;
  std::int64_t valid_from_ms = 0;
};

struct Question {
  std::string text;
  int category = 0;
  std::vector<std::string> evidence;  // dialogue ids, corrected and checked
};

struct Conversation {
  std::string sample_id;
  std::vector<Turn> turns;
  std::vector<Question> questions;  // categories 1–4 with evidence only
};

Json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return Json::parse(in);
}

// "1:56 pm on 8 May, 2023" to Unix milliseconds. The data gives no time
// zone; UTC keeps the result independent of the machine's.
std::int64_t parse_session_date(const std::string& text) {
  static const std::regex pattern(R"((\d{1,2}):(\d{2}) (am|pm) on (\d{1,2}) (\w+), (\d{4}))");
  static const std::map<std::string, int> months = {
      {"January", 0},   {"February", 1}, {"March", 2},     {"April", 3},
      {"May", 4},       {"June", 5},     {"July", 6},      {"August", 7},
      {"September", 8}, {"October", 9},  {"November", 10}, {"December", 11}};
  std::smatch m;
  auto month = months.end();
  if (std::regex_match(text, m, pattern)) month = months.find(m[5].str());
  if (month == months.end()) throw std::runtime_error("unexpected session date '" + text + "'");
  struct tm t {};
  t.tm_hour = std::stoi(m[1].str()) % 12 + (m[3].str() == "pm" ? 12 : 0);  // 12 am is 0h
  t.tm_min = std::stoi(m[2].str());
  t.tm_mday = std::stoi(m[4].str());
  t.tm_mon = month->second;
  t.tm_year = std::stoi(m[6].str()) - 1900;
  return static_cast<std::int64_t>(timegm(&t)) * 1000;
}

// The protocol's memory text: "<speaker>: <text>", plus the BLIP caption of
// a shared image, which often carries the answer (LoCoMo asks about photos).
std::string turn_text(const Json& turn) {
  std::string text =
      turn.at("speaker").get<std::string>() + ": " + turn.at("text").get<std::string>();
  if (turn.contains("blip_caption")) {
    text += " [image: " + turn["blip_caption"].get<std::string>() + "]";
  }
  return text;
}

// Sessions are keys "session_<n>" with their date in "session_<n>_date_time".
std::vector<Turn> load_turns(const Json& conversation) {
  std::vector<Turn> turns;
  for (int n = 1;; ++n) {
    std::string key = "session_" + std::to_string(n);
    if (!conversation.contains(key)) break;
    std::int64_t date = parse_session_date(conversation.at(key + "_date_time").get<std::string>());
    for (const Json& turn : conversation[key]) {
      turns.push_back({turn.at("dia_id").get<std::string>(), turn_text(turn), date});
    }
  }
  return turns;
}

// question_id "locomo_<conversation>_qa<question>" (both 0-based) to the
// corrected evidence. Only WRONG_CITATION entries replace the evidence; the
// other error types fault the answer, not the citation.
using Corrections = std::map<std::pair<std::size_t, std::size_t>, std::vector<std::string>>;

Corrections load_corrections(const std::string& path) {
  static const std::regex id_pattern(R"(locomo_(\d+)_qa(\d+))");
  Corrections out;
  for (const Json& entry : read_json(path)) {
    if (entry.at("error_type") != "WRONG_CITATION" || !entry.contains("correct_evidence")) continue;
    std::string id = entry.at("question_id").get<std::string>();
    std::smatch m;
    if (!std::regex_match(id, m, id_pattern)) throw std::runtime_error("bad question_id " + id);
    out[{std::stoul(m[1].str()), std::stoul(m[2].str())}] =
        entry["correct_evidence"].get<std::vector<std::string>>();
  }
  return out;
}

// A few gold labels are malformed ("D8:6; D9:17", "D9:1 D4:4", "D", "D:11:26").
// Each string is split on separators, and only ids of turns that exist are
// kept (each once): no retriever could return the others, so counting them
// would only lower every system's recall by the same amount.
std::vector<std::string> clean_evidence(const std::vector<std::string>& raw,
                                        const std::set<std::string>& turn_ids,
                                        std::size_t& dropped) {
  static const std::regex token(R"([^\s;,]+)");
  std::vector<std::string> out;
  for (const std::string& s : raw) {
    for (auto it = std::sregex_iterator(s.begin(), s.end(), token); it != std::sregex_iterator();
         ++it) {
      std::string id = it->str();
      if (!turn_ids.count(id)) {
        ++dropped;
      } else if (std::find(out.begin(), out.end(), id) == out.end()) {
        out.push_back(id);
      }
    }
  }
  return out;
}

std::vector<Question> load_questions(const Json& qa, std::size_t conv_index,
                                     const std::vector<Turn>& turns,
                                     const Corrections& corrections) {
  std::set<std::string> turn_ids;
  for (const Turn& t : turns) turn_ids.insert(t.dia_id);
  std::vector<Question> out;
  std::size_t dropped = 0;
  for (std::size_t q = 0; q < qa.size(); ++q) {
    int category = qa[q].at("category").get<int>();
    if (category < kFirstCategory || category > kLastCategory) continue;
    auto corrected = corrections.find({conv_index, q});
    std::vector<std::string> evidence = clean_evidence(
        corrected != corrections.end() ? corrected->second
                                       : qa[q].at("evidence").get<std::vector<std::string>>(),
        turn_ids, dropped);
    if (evidence.empty()) continue;
    out.push_back({qa[q].at("question").get<std::string>(), category, std::move(evidence)});
  }
  if (dropped > 0) {
    std::cerr << "note: conversation " << conv_index << ": dropped " << dropped
              << " evidence ids that name no turn\n";
  }
  return out;
}

std::vector<Conversation> load_split(const Options& opts) {
  Json data = read_json(opts.data_dir + "/locomo10.json");
  Corrections corrections = load_corrections(opts.data_dir + "/evidence-corrections.json");
  std::size_t first = opts.split == "heldout" ? kDevConversations : 0;
  std::size_t last = opts.split == "dev" ? kDevConversations : data.size();
  std::vector<Conversation> out;
  for (std::size_t c = first; c < last && c < data.size(); ++c) {
    Conversation conv;
    conv.sample_id = data[c].at("sample_id").get<std::string>();
    conv.turns = load_turns(data[c].at("conversation"));
    conv.questions = load_questions(data[c].at("qa"), c, conv.turns, corrections);
    out.push_back(std::move(conv));
  }
  return out;
}

// ---- scoring ---------------------------------------------------------------

// For each question, the dialogue ids retrieved, best first (at most kSearchK).
using Rankings = std::vector<std::vector<std::string>>;

// Sums of recall and hit per cutoff, over the questions of one category (or all).
struct Tally {
  std::array<double, kCutoffs.size()> recall{}, hit{};
  std::size_t questions = 0;
};

// Index 0: all categories; 1–4: that category.
using Tallies = std::array<Tally, kLastCategory + 1>;

void add_question(Tally& tally, const Question& q, const std::vector<std::string>& ranked) {
  for (std::size_t c = 0; c < kCutoffs.size(); ++c) {
    std::size_t top = std::min(kCutoffs[c], ranked.size());
    std::size_t found = 0;
    for (const std::string& id : q.evidence) {
      if (std::find(ranked.begin(), ranked.begin() + top, id) != ranked.begin() + top) ++found;
    }
    tally.recall[c] += static_cast<double>(found) / static_cast<double>(q.evidence.size());
    tally.hit[c] += found > 0 ? 1.0 : 0.0;
  }
  ++tally.questions;
}

void score(Tallies& tallies, const Conversation& conv, const Rankings& rankings) {
  for (std::size_t i = 0; i < conv.questions.size(); ++i) {
    add_question(tallies[0], conv.questions[i], rankings[i]);
    add_question(tallies[conv.questions[i].category], conv.questions[i], rankings[i]);
  }
}

void print_tallies(std::string_view system, const std::string& split, const Tallies& tallies) {
  for (int category = 0; category <= kLastCategory; ++category) {
    const Tally& t = tallies[category];
    double n = static_cast<double>(std::max<std::size_t>(t.questions, 1));
    for (std::size_t c = 0; c < kCutoffs.size(); ++c) {
      JsonLine line;
      line.str("system", system).str("split", split);
      if (category == 0) {
        line.str("category", "all");
      } else {
        line.count("category", static_cast<std::uint64_t>(category));
      }
      line.count("k", kCutoffs[c])
          .num("recall", t.recall[c] / n, 4)
          .num("hit", t.hit[c] / n, 4)
          .count("questions", t.questions)
          .print();
    }
  }
}

// ---- through memosd --------------------------------------------------------

// Adds every turn with up to kPipeline requests in flight, and returns the
// dialogue id of each item memosd wrote, by item id.
std::unordered_map<std::uint64_t, std::string> add_turns(memos::Client& client,
                                                         const std::string& cube,
                                                         const std::vector<Turn>& turns) {
  std::unordered_map<std::uint64_t, std::string> dia_ids;
  std::deque<std::pair<std::future<memos::Result<memos::Item>>, const Turn*>> window;
  auto settle_oldest = [&] {
    memos::Result<memos::Item> added = window.front().first.get();
    check(added, "add");
    dia_ids[added->id] = window.front().second->dia_id;
    window.pop_front();
  };
  for (const Turn& turn : turns) {
    if (window.size() >= kPipeline) settle_oldest();
    memos::NewItem item;
    item.text = turn.text;
    item.valid_from_ms = turn.valid_from_ms;
    item.allow_duplicate = true;  // a conversation repeats turns ("ok"): store each
    window.emplace_back(client.add_async(cube, std::move(item)), &turn);
  }
  while (!window.empty()) settle_oldest();
  return dia_ids;
}

constexpr memos::SearchMode kModes[] = {memos::SearchMode::dense, memos::SearchMode::lexical,
                                        memos::SearchMode::hybrid};
constexpr std::size_t kModeCount = 3;

// One fresh memosd per conversation, so no conversation sees another's
// turns; every question is asked in each mode (kModes order).
std::array<Rankings, kModeCount> rank_memosd(const Options& opts, const Conversation& conv) {
  memos::testing::TempDir dir;
  std::vector<std::string> args;
  if (!opts.config.empty()) args = {"--config", opts.config};
  memos::testing::MemosdProcess daemon(opts.memosd, dir.path(), args);
  start_daemon(daemon, opts.memosd);
  std::unique_ptr<memos::Client> client = connect_client(daemon.socket());
  memos::Cube cube = create_cube(*client, "locomo");
  auto dia_ids = add_turns(*client, cube.name, conv.turns);

  // Searched "valid as of now": every turn's valid_from is in the past.
  std::array<Rankings, kModeCount> rankings;
  for (std::size_t m = 0; m < kModeCount; ++m) {
    memos::SearchOptions search;
    search.k = kSearchK;
    search.mode = kModes[m];
    for (const Question& q : conv.questions) {
      auto hits = client->search(cube.name, q.text, search);
      check(hits, "search");
      std::vector<std::string>& ranked = rankings[m].emplace_back();
      for (const memos::Hit& hit : *hits) {
        auto found = dia_ids.find(hit.item.id);
        if (found == dia_ids.end()) throw std::runtime_error("search returned an item never added");
        ranked.push_back(found->second);
      }
    }
  }
  client.reset();  // before stopping: see stop_daemon
  stop_daemon(daemon);
  return rankings;
}

// ---- the FTS5 baseline -----------------------------------------------------

using Database = std::unique_ptr<sqlite3, decltype(&sqlite3_close)>;
using Statement = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

void sqlite_check(sqlite3* db, int rc, std::string_view what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error("sqlite " + std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

Statement prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  sqlite_check(db, sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), sql);
  return Statement(stmt, &sqlite3_finalize);
}

// The question's words, each quoted and joined with OR. Everything but ASCII
// letters and digits (and UTF-8 bytes) separates words, so no FTS5 syntax
// character survives; quoting keeps words like AND, NOT or NEAR plain terms.
// Empty when the question has no words.
std::string fts5_query(std::string_view question) {
  std::string query, word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!query.empty()) query += " OR ";
    query += '"' + word + '"';
    word.clear();
  };
  for (char ch : question) {
    auto byte = static_cast<unsigned char>(ch);
    if (std::isalnum(byte) || byte >= 0x80) {
      word += ch;
    } else {
      flush();
    }
  }
  flush();
  return query;
}

// The same turns in an in-memory FTS5 table, ranked by bm25() (best first
// is the smallest value).
Rankings rank_fts5(const Conversation& conv) {
  sqlite3* raw = nullptr;
  if (sqlite3_open(":memory:", &raw) != SQLITE_OK) throw std::runtime_error("sqlite3_open failed");
  Database db(raw, &sqlite3_close);
  sqlite_check(db.get(),
               sqlite3_exec(db.get(), "CREATE VIRTUAL TABLE t USING fts5(text, dia_id UNINDEXED)",
                            nullptr, nullptr, nullptr),
               "create table");
  Statement insert = prepare(db.get(), "INSERT INTO t(text, dia_id) VALUES (?, ?)");
  for (const Turn& turn : conv.turns) {
    sqlite3_bind_text(insert.get(), 1, turn.text.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert.get(), 2, turn.dia_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite_check(db.get(), sqlite3_step(insert.get()), "insert");
    sqlite3_reset(insert.get());
  }
  Statement search =
      prepare(db.get(), "SELECT dia_id FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?");
  sqlite3_bind_int(search.get(), 2, static_cast<int>(kSearchK));  // kept across resets
  Rankings rankings;
  for (const Question& q : conv.questions) {
    std::vector<std::string>& ranked = rankings.emplace_back();
    std::string query = fts5_query(q.text);
    if (query.empty()) continue;
    sqlite3_bind_text(search.get(), 1, query.c_str(), -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(search.get())) == SQLITE_ROW) {
      ranked.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(search.get(), 0)));
    }
    sqlite_check(db.get(), rc, "search");
    sqlite3_reset(search.get());
  }
  return rankings;
}

// ---- the run ---------------------------------------------------------------

void run(const Options& opts) {
  std::vector<Conversation> conversations = load_split(opts);
  std::array<Tallies, kModeCount> memosd_tallies{};
  Tallies fts5_tallies{};
  for (const Conversation& conv : conversations) {
    std::cerr << conv.sample_id << ": " << conv.turns.size() << " turns, " << conv.questions.size()
              << " questions\n";
    auto ranked = rank_memosd(opts, conv);
    for (std::size_t m = 0; m < kModeCount; ++m) score(memosd_tallies[m], conv, ranked[m]);
    score(fts5_tallies, conv, rank_fts5(conv));
  }
  for (std::size_t m = 0; m < kModeCount; ++m)
    print_tallies(std::string("memosd-") + memos::to_string(kModes[m]), opts.split,
                  memosd_tallies[m]);
  print_tallies("fts5-bm25", opts.split, fts5_tallies);
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-locomo-recall", kUsage, argc, argv, parse_options, run);
}
