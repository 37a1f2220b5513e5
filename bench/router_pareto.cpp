// router_pareto.cpp — bench-router-pareto: what each budget tier of the
// query-time memory modules buys on LoCoMo (memos(7), "Routing").
//
// For each conversation of the split, a fresh memosd gets one cube holding
// every turn as one memory (its session "D<n>" and the session's date as
// valid-from). Every question of categories 1–4 with (corrected) evidence
// is searched with k = 10 through each fixed route (every tier combination
// this memosd runs), asked as of the conversation's last session. Per
// route: recall_at_10, the share of the question's evidence turns present
// in the context the route hands on (a turn compress cut entirely is
// missing); context_tokens, that context's estimated size; ms_per_query,
// the client's wall time per search. One JSON line per route:
//   {"bench":"router-pareto","split","policy","lambda","recall_at_10",
//    "context_tokens","ms_per_query","questions"}
// `lambda` is null for a fixed route (the learned router's lines carry
// theirs). With --dump FILE, every (question, route) outcome is written
// as a JSON line too: what a router is trained on (dev only).

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
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
using memos::bench::locomo::kDefaultDataDir;
using memos::bench::locomo::Question;

constexpr std::string_view kUsage =
    "usage: bench-router-pareto --memosd PATH [--split dev|heldout] [--data DIR]\n"
    "       [--config FILE] [--routes ROUTE;ROUTE...] [--dump FILE]\n";

constexpr std::uint32_t kSearchK = 10;

struct Options {
  std::string memosd;
  std::string split = "dev";
  std::string data_dir{kDefaultDataDir};
  std::string config;  // a memosd.conf for the daemons under test (tuning on dev)
  std::vector<memos::Route> routes;
  std::string dump;
};

// Every combination memosd runs: retrieve low|mid|high, the others low|mid
// (their high tiers read with an executor, not built yet).
std::vector<memos::Route> every_route() {
  using memos::CostTier;
  std::vector<memos::Route> routes;
  for (CostTier retrieve : {CostTier::low, CostTier::mid, CostTier::high})
    for (CostTier temporal : {CostTier::low, CostTier::mid})
      for (CostTier expand : {CostTier::low, CostTier::mid})
        for (CostTier compress : {CostTier::low, CostTier::mid})
          routes.push_back({{retrieve, temporal, expand, compress}});
  return routes;
}

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "measures the routing tiers on LoCoMo",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   opts.memosd = value;
                 } else if (flag == "--split") {
                   if (value != "dev" && value != "heldout")
                     throw UsageError("--split must be dev or heldout");
                   opts.split = value;
                 } else if (flag == "--data") {
                   opts.data_dir = value;
                 } else if (flag == "--config") {
                   opts.config = value;
                 } else if (flag == "--dump") {
                   opts.dump = value;
                 } else if (flag == "--routes") {
                   while (!value.empty()) {
                     std::string_view one = value.substr(0, value.find(';'));
                     value.remove_prefix(std::min(value.size(), one.size() + 1));
                     auto route = memos::parse_route(one);
                     if (!route)
                       throw UsageError("--routes: '" + std::string(one) + "' is no route");
                     opts.routes.push_back(*route);
                   }
                 } else {
                   return false;
                 }
                 return true;
               });
  if (opts.memosd.empty()) throw UsageError("--memosd is required");
  if (opts.routes.empty()) opts.routes = every_route();
  return opts;
}

struct Tally {
  double recall = 0, tokens = 0, ms = 0;
  std::size_t questions = 0;
};

double evidence_recall(const Question& q, const std::set<std::string>& in_context) {
  std::size_t found = 0;
  for (const auto& id : q.evidence) found += in_context.contains(id) ? 1 : 0;
  return static_cast<double>(found) / static_cast<double>(q.evidence.size());
}

// The conversation's last session date: when its questions are asked.
std::int64_t asked_at(const Conversation& conv) {
  std::int64_t last = 0;
  for (const auto& turn : conv.turns) last = std::max(last, turn.valid_from_ms);
  return last;
}

void run_conversation(const Options& opts, const Conversation& conv, std::vector<Tally>* tallies,
                      std::ostream* dump) {
  ConversationDaemon daemon(opts.memosd, opts.config, conv);
  const std::int64_t reference = asked_at(conv);
  for (std::size_t r = 0; r < opts.routes.size(); ++r) {
    memos::SearchOptions search;
    search.k = kSearchK;
    search.route = opts.routes[r];
    search.reference_ms = reference;
    for (std::size_t qi = 0; qi < conv.questions.size(); ++qi) {
      const Question& q = conv.questions[qi];
      auto start = std::chrono::steady_clock::now();
      auto routed = daemon.client().search_routed(daemon.cube(), q.text, search);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      check(routed, "search");
      std::set<std::string> in_context;
      for (const auto& piece : routed->context) in_context.insert(daemon.dia_id(piece.item_id));
      const double recall = evidence_recall(q, in_context);
      Tally& t = (*tallies)[r];
      t.recall += recall;
      t.tokens += routed->context_tokens;
      t.ms += ms;
      ++t.questions;
      if (dump) {
        *dump << "{\"conversation\":\"" << conv.sample_id << "\",\"question\":" << qi
              << ",\"category\":" << q.category << ",\"policy\":\""
              << memos::to_string(opts.routes[r]) << "\",\"recall\":" << recall
              << ",\"context_tokens\":" << routed->context_tokens << ",\"ms\":" << ms << "}\n";
      }
    }
  }
  daemon.stop();
}

void run(const Options& opts) {
  std::vector<Conversation> conversations =
      memos::bench::locomo::load_split(opts.data_dir, opts.split);
  std::vector<Tally> tallies(opts.routes.size());
  std::unique_ptr<std::ofstream> dump;
  if (!opts.dump.empty()) {
    dump = std::make_unique<std::ofstream>(opts.dump);
    if (!*dump) throw std::runtime_error("cannot write " + opts.dump);
  }
  for (const Conversation& conv : conversations) {
    std::cerr << conv.sample_id << ": " << conv.turns.size() << " turns, " << conv.questions.size()
              << " questions\n";
    run_conversation(opts, conv, &tallies, dump.get());
  }
  for (std::size_t r = 0; r < opts.routes.size(); ++r) {
    const Tally& t = tallies[r];
    const double n = static_cast<double>(std::max<std::size_t>(t.questions, 1));
    JsonLine()
        .str("bench", "router-pareto")
        .str("split", opts.split)
        .str("policy", memos::to_string(opts.routes[r]))
        .null("lambda")
        .num("recall_at_10", t.recall / n, 4)
        .num("context_tokens", t.tokens / n, 1)
        .num("ms_per_query", t.ms / n, 3)
        .count("questions", t.questions)
        .print();
  }
}

}  // namespace

int main(int argc, char** argv) {
  return memos::bench::bench_main("bench-router-pareto", kUsage, argc, argv, parse_options, run);
}
