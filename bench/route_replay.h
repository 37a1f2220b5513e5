// route_replay.h — LoCoMo questions replayed through routes of the
// query-time memory modules (memos(7), "Routing"): what bench-router-pareto
// reports and bench-router-train learns from.
//
// For one conversation, a fresh memosd (ConversationDaemon) is asked every
// question of categories 1–4 with evidence at k = 10, as of the
// conversation's last session, through each route asked for; each outcome
// is the evidence recall of the context the route hands on (a turn
// compress cut entirely is missing), its estimated tokens and the client's
// wall time. With features on, each question is first asked once explained
// (not timed) for the features and embedding a router would read.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "bench/locomo_daemon.h"
#include "bench/locomo_data.h"
#include "memos/client.h"
#include "memos/routing.h"

namespace memos::bench::locomo {

inline constexpr std::uint32_t kRouteK = 10;

struct Outcome {
  double recall = 0, tokens = 0, ms = 0;
};

struct ReplayedQuestion {
  std::string conversation;
  std::size_t index = 0;  // in the conversation's questions
  int category = 0;
  std::vector<std::pair<std::string, float>> features;  // a router's inputs
  std::vector<float> vector;                            // the question's embedding
  std::vector<Outcome> outcomes;                        // one per route asked
};

// "0.1,0.3,1,3": the lambdas a router is run or trained at, each in
// (0, 100]. Throws UsageError.
inline std::vector<double> parse_lambdas(std::string_view value) {
  std::vector<double> out;
  while (!value.empty()) {
    std::string one(value.substr(0, value.find(',')));
    value.remove_prefix(std::min(value.size(), one.size() + 1));
    char* end = nullptr;
    const double l = std::strtod(one.c_str(), &end);
    if (one.empty() || *end != '\0' || !(l > 0) || l > 100)
      throw UsageError("--lambdas: '" + one + "' is no lambda in (0, 100]");
    out.push_back(l);
  }
  if (out.empty()) throw UsageError("--lambdas names none");
  return out;
}

// Every combination memosd runs: retrieve low|mid|high, the others low|mid
// (their high tiers read with an executor, not built yet).
inline std::vector<memos::Route> every_route() {
  using memos::CostTier;
  std::vector<memos::Route> routes;
  for (CostTier retrieve : {CostTier::low, CostTier::mid, CostTier::high})
    for (CostTier temporal : {CostTier::low, CostTier::mid})
      for (CostTier expand : {CostTier::low, CostTier::mid})
        for (CostTier compress : {CostTier::low, CostTier::mid})
          routes.push_back({{retrieve, temporal, expand, compress}});
  return routes;
}

// The conversation's last session date: when its questions are asked.
inline std::int64_t asked_at(const Conversation& conv) {
  std::int64_t last = 0;
  for (const auto& turn : conv.turns) last = std::max(last, turn.valid_from_ms);
  return last;
}

// One routed search of `q`, timed. Throws on a failed search.
inline Outcome ask(ConversationDaemon& daemon, const Question& q,
                   const memos::SearchOptions& options, memos::RoutedSearch* reply = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  auto routed = daemon.client().search_routed(daemon.cube(), q.text, options);
  Outcome o;
  o.ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  check(routed, "search");
  std::set<std::string> in_context;
  for (const auto& piece : routed->context) in_context.insert(daemon.dia_id(piece.item_id));
  std::size_t found = 0;
  for (const auto& id : q.evidence) found += in_context.contains(id) ? 1 : 0;
  o.recall = static_cast<double>(found) / static_cast<double>(q.evidence.size());
  o.tokens = routed->context_tokens;
  if (reply) *reply = std::move(routed.value());
  return o;
}

// Search options for `conv`'s questions: k = 10, asked as of its last session.
inline memos::SearchOptions route_options(const Conversation& conv) {
  memos::SearchOptions options;
  options.k = kRouteK;
  options.routing.reference_ms = asked_at(conv);
  return options;
}

inline std::vector<ReplayedQuestion> replay_conversation(ConversationDaemon& daemon,
                                                         const Conversation& conv,
                                                         const std::vector<memos::Route>& routes,
                                                         bool features) {
  std::vector<ReplayedQuestion> out(conv.questions.size());
  for (std::size_t qi = 0; qi < conv.questions.size(); ++qi) {
    out[qi].conversation = conv.sample_id;
    out[qi].index = qi;
    out[qi].category = conv.questions[qi].category;
    if (!features) continue;
    memos::SearchOptions explained = route_options(conv);
    explained.routing.route = memos::Route::all(memos::CostTier::low);
    explained.explain = true;
    memos::RoutedSearch reply;
    ask(daemon, conv.questions[qi], explained, &reply);
    if (!reply.router) throw std::runtime_error("an explained routed search names no features");
    out[qi].features = reply.router->features;
    out[qi].vector = reply.router->vector;
  }
  // Route by route, so that each route's questions run back to back (as a
  // tenant's would) rather than interleaved with every other route's.
  for (const auto& route : routes) {
    memos::SearchOptions options = route_options(conv);
    options.routing.route = route;
    for (std::size_t qi = 0; qi < conv.questions.size(); ++qi)
      out[qi].outcomes.push_back(ask(daemon, conv.questions[qi], options));
  }
  return out;
}

}  // namespace memos::bench::locomo
