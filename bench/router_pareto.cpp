// router_pareto.cpp — bench-router-pareto: what each budget tier of the
// query-time memory modules buys on LoCoMo (memos(7), "Routing"), and what
// the router (budget "auto") buys at each lambda.
//
// Each conversation of the split gets a fresh memosd holding every turn as
// one memory (route_replay.h); every question is searched through each
// fixed route (every tier combination this memosd runs), then with budget
// auto at each lambda (the router memosd loads: plugins.router, by default
// router-policy with its shipped weights). Per policy: recall_at_10, the
// share of the question's evidence turns in the context handed on;
// context_tokens, that context's estimated size; ms_per_query, the client's
// wall time per search (the router's features and call included). One
// JSON line per policy:
//   {"bench":"router-pareto","split","policy","lambda","recall_at_10",
//    "context_tokens","ms_per_query","questions"}
// `lambda` is null for a fixed route. With --dump FILE, every (question,
// policy) outcome is written as a JSON line too.

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_daemon.h"
#include "bench/locomo_data.h"
#include "bench/route_replay.h"
#include "memos/client.h"

namespace {

using memos::bench::check;
using memos::bench::JsonLine;
using memos::bench::read_options;
using memos::bench::UsageError;
using memos::bench::locomo::Conversation;
using memos::bench::locomo::ConversationDaemon;
using memos::bench::locomo::Outcome;

constexpr std::string_view kUsage =
    "usage: bench-router-pareto --memosd PATH [--split dev|heldout] [--data DIR]\n"
    "       [--config FILE] [--routes ROUTE;ROUTE...] [--lambdas L,L...] [--dump FILE]\n";

struct Options : memos::bench::locomo::RunOptions {
  std::vector<memos::Route> routes;
  std::vector<double> lambdas = {0.1, 0.3, 1, 3};
  std::string dump;
};

Options parse_options(int argc, char** argv) {
  Options opts;
  read_options(argc, argv, "measures the routing tiers and the router on LoCoMo",
               [&](std::string_view flag, std::string_view value) {
                 if (memos::bench::locomo::read_run_option(flag, value, {"dev", "heldout"},
                                                           "--split must be dev or heldout", &opts))
                   return true;
                 if (flag == "--dump") {
                   opts.dump = value;
                 } else if (flag == "--lambdas") {
                   opts.lambdas = value == "none" ? std::vector<double>{}
                                                  : memos::bench::locomo::parse_lambdas(value);
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
  memos::bench::locomo::check_run_options(opts);
  if (opts.routes.empty()) opts.routes = memos::bench::locomo::every_route();
  return opts;
}

struct Tally {
  std::string policy;
  double lambda = 0;  // 0: a fixed route
  double recall = 0, tokens = 0, ms = 0;
  std::size_t questions = 0;

  void add(const Outcome& o) {
    recall += o.recall;
    tokens += o.tokens;
    ms += o.ms;
    ++questions;
  }
};

void dump_line(std::ostream* dump, const Conversation& conv, std::size_t qi, const Tally& t,
               const Outcome& o, const std::string& chosen = "") {
  if (!dump) return;
  *dump << "{\"conversation\":\"" << conv.sample_id << "\",\"question\":" << qi
        << ",\"category\":" << conv.questions[qi].category << ",\"policy\":\"" << t.policy
        << "\",\"route\":\"" << (chosen.empty() ? t.policy : chosen) << "\",\"recall\":" << o.recall
        << ",\"context_tokens\":" << o.tokens << ",\"ms\":" << o.ms << "}\n";
}

void run_conversation(const Options& opts, const Conversation& conv, std::vector<Tally>* tallies,
                      std::ostream* dump) {
  ConversationDaemon daemon(opts.memosd, opts.config, conv);
  auto replayed = memos::bench::locomo::replay_conversation(daemon, conv, opts.routes, false);
  for (std::size_t r = 0; r < opts.routes.size(); ++r) {
    for (std::size_t qi = 0; qi < replayed.size(); ++qi) {
      (*tallies)[r].add(replayed[qi].outcomes[r]);
      dump_line(dump, conv, qi, (*tallies)[r], replayed[qi].outcomes[r]);
    }
  }
  for (std::size_t l = 0; l < opts.lambdas.size(); ++l) {
    Tally& t = (*tallies)[opts.routes.size() + l];
    memos::SearchOptions options = memos::bench::locomo::route_options(conv);
    options.routing.auto_route = true;
    options.routing.lambda = static_cast<float>(opts.lambdas[l]);
    for (std::size_t qi = 0; qi < conv.questions.size(); ++qi) {
      memos::RoutedSearch reply;
      Outcome o = memos::bench::locomo::ask(daemon, conv.questions[qi], options, &reply);
      if (!reply.router || reply.router->source == "default tier")
        throw std::runtime_error("budget auto ran without a router: " +
                                 (reply.router ? reply.router->reason : std::string("no view")));
      t.add(o);
      dump_line(dump, conv, qi, t, o, memos::to_string(reply.router->route));
    }
  }
  daemon.stop();
}

void run(const Options& opts) {
  std::vector<Conversation> conversations =
      memos::bench::locomo::load_split(opts.data_dir, opts.split);
  std::vector<Tally> tallies;
  for (const auto& route : opts.routes) tallies.push_back({memos::to_string(route)});
  for (double l : opts.lambdas) tallies.push_back({"router", l});
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
  for (const Tally& t : tallies) {
    const double n = static_cast<double>(std::max<std::size_t>(t.questions, 1));
    JsonLine line;
    line.str("bench", "router-pareto").str("split", opts.split).str("policy", t.policy);
    if (t.lambda > 0) {
      line.num("lambda", t.lambda, 2);
    } else {
      line.null("lambda");
    }
    line.num("recall_at_10", t.recall / n, 4)
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
