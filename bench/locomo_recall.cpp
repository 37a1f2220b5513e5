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
// notes and warnings go to stderr. Usage: see kUsage. The data set is read
// by locomo_data.h, which bench-sched-replay shares.

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_daemon.h"
#include "bench/locomo_data.h"
#include "memos/client.h"

namespace {

using memos::bench::check;
using memos::bench::JsonLine;
using memos::bench::read_options;
using memos::bench::UsageError;
using memos::bench::locomo::Conversation;
using memos::bench::locomo::ConversationDaemon;
using memos::bench::locomo::kLastCategory;
using memos::bench::locomo::Question;
using memos::bench::locomo::Turn;

constexpr std::string_view kUsage =
    "usage: bench-locomo-recall --memosd PATH [--split dev|heldout|all] [--data DIR]\n";

constexpr std::array<std::size_t, 4> kCutoffs = {1, 5, 10, 20};
constexpr std::uint32_t kSearchK = 20;

struct Options : memos::bench::locomo::RunOptions {};

// ---- options ---------------------------------------------------------------

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(
      argc, argv, "measures recall on LoCoMo", [&](std::string_view flag, std::string_view value) {
        return memos::bench::locomo::read_run_option(flag, value, {"dev", "heldout", "all"},
                                                     "--split must be dev, heldout or all", &opts);
      });
  memos::bench::locomo::check_run_options(opts);
  return opts;
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

constexpr memos::SearchMode kModes[] = {memos::SearchMode::dense, memos::SearchMode::lexical,
                                        memos::SearchMode::hybrid};
constexpr std::size_t kModeCount = 3;

// One fresh memosd per conversation, so no conversation sees another's
// turns; every question is asked in each mode (kModes order).
std::array<Rankings, kModeCount> rank_memosd(const Options& opts, const Conversation& conv) {
  ConversationDaemon daemon(opts.memosd, opts.config, conv);
  // Searched "valid as of now": every turn's valid_from is in the past.
  std::array<Rankings, kModeCount> rankings;
  for (std::size_t m = 0; m < kModeCount; ++m) {
    memos::SearchOptions search;
    search.k = kSearchK;
    search.mode = kModes[m];
    for (const Question& q : conv.questions) {
      auto hits = daemon.client().search(daemon.cube(), q.text, search);
      check(hits, "search");
      std::vector<std::string>& ranked = rankings[m].emplace_back();
      for (const memos::Hit& hit : *hits) ranked.push_back(daemon.dia_id(hit.item.id));
    }
  }
  daemon.stop();
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
  std::vector<Conversation> conversations =
      memos::bench::locomo::load_split(opts.data_dir, opts.split);
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
