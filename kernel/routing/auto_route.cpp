#include "kernel/routing/auto_route.h"

#include <chrono>

#include "kernel/routing/routed_search.h"

namespace memos::kernel::routing {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The tiers memosd runs, less the retrieve tiers whose mode the policy forbids.
std::vector<std::pair<Module, std::vector<CostTier>>> offered_tiers(const AutoRouteInput& input) {
  std::vector<std::pair<Module, std::vector<CostTier>>> out;
  for (std::size_t i = 0; i < kModules; ++i) {
    const Module m = static_cast<Module>(i);
    std::vector<CostTier> tiers;
    for (CostTier t : runnable_tiers(m, input.with_model)) {
      if (m != Module::retrieve || !input.mode_allowed || input.mode_allowed(retrieve_mode(t)))
        tiers.push_back(t);
    }
    out.emplace_back(m, std::move(tiers));
  }
  return out;
}

// Features over a low retrieval (when the policy allows lexical search),
// and the embedding at `dimension` (0: none).
void read_query(const IndexSet& indexes, const store::ReadTxn& txn, const AutoRouteInput& input,
                std::uint32_t dimension, RouterView* view, std::vector<float>* vector) {
  std::vector<SearchHit> low;
  SearchQuery q = input.search;
  q.mode = SearchMode::lexical;
  if (!input.mode_allowed || input.mode_allowed(SearchMode::lexical)) {
    if (Status s = run_search(indexes, txn, q, &low); !s.ok()) {
      low.clear();
      view->reason = "the low retrieval failed (" + s.message + "); its features are 0";
    }
  }
  view->features = route_features(
      q.text, input.reference_ms != 0 ? input.reference_ms : q.filter.now_ms, low, q.k);
  if (dimension == 0) return;
  if (Status s = indexes.embed(q.text, dimension, vector); !s.ok()) {
    vector->clear();
    view->reason = "the query would not embed: " + s.message;
  }
}

}  // namespace

Route choose_auto_route(const IndexSet& indexes, const store::ReadTxn& txn,
                        const PluginRouter* router, std::string_view router_missing,
                        const AutoRouteInput& input, RouterView* view) {
  *view = {};
  const auto start = Clock::now();
  auto fall_back = [&](std::string source, std::string why, CostTier tier) {
    view->source = std::move(source);
    view->reason = std::move(why);
    view->route = runnable(Route::all(tier), input.with_model);
    // A retrieve tier the policy forbids gives way to one it allows.
    if (input.mode_allowed && !input.mode_allowed(routed_mode(view->route)))
      view->route[Module::retrieve] =
          view->route[Module::retrieve] == CostTier::low ? CostTier::mid : CostTier::low;
    view->ms = ms_since(start);
    return view->route;
  };
  if (input.budget_spent)
    return fall_back("budget spent", "the day's context tokens are spent: every module low",
                     CostTier::low);
  if (!router) return fall_back("default tier", std::string(router_missing), input.default_tier);

  RouterAsk ask;
  ask.query = input.search.text;
  read_query(indexes, txn, input, router->info().dimension, view, &ask.vector);
  if (router->info().dimension > 0 && ask.vector.empty())
    return fall_back("default tier", view->reason, input.default_tier);
  ask.features = view->features;
  ask.offered = offered_tiers(input);
  ask.lambda = input.lambda;
  ask.ms_budget = input.ms_budget;
  ask.token_budget = input.token_budget;
  RouterAnswer answer;
  if (Status s = router->route(ask, &answer); !s.ok()) {
    auto features = std::move(view->features);
    Route r = fall_back("default tier", s.message, input.default_tier);
    view->features = std::move(features);
    return r;
  }
  view->source = router->name();
  view->reason = std::move(answer.reason);
  view->route = answer.route;
  view->scores = std::move(answer.scores);
  if (input.explain) view->vector = std::move(ask.vector);
  view->ms = ms_since(start);
  return view->route;
}

void describe_query(const IndexSet& indexes, const store::ReadTxn& txn, const PluginRouter* router,
                    const AutoRouteInput& input, RouterView* view) {
  const auto start = Clock::now();
  view->source = "fixed route";
  std::uint32_t dimension = router ? router->info().dimension : 0;
  if (dimension == 0 && !input.search.cubes.empty())
    dimension = input.search.cubes.front().dimension;
  read_query(indexes, txn, input, dimension, view, &view->vector);
  view->ms = ms_since(start);
}

}  // namespace memos::kernel::routing
