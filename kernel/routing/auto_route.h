// auto_route.h — budget "auto": the route a router plugin chooses for one
// query (memos(7), "Routing"). Before any costly module runs, memosd reads
// the query's features (route_features.h) over a low-tier retrieval, embeds
// the query when the router reads an embedding, and offers the router the
// tiers it runs that the tenant's policy allows; the router answers a tier
// per module. With no router, or one that fails or answers amiss, the
// query runs at the default tier and the view says why: routing degrades,
// it never fails a search.
//
// Errors: none (choose_auto_route); describe_query's: none either (a failed
// low retrieval or embedding leaves those features 0 and says so).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/plugin_router.h"
#include "kernel/routing/route_features.h"
#include "kernel/search.h"
#include "memos/vocabulary.h"

namespace memos::kernel::routing {

// What a reply says of how its route was chosen (--explain).
struct RouterView {
  std::string source;  // the router's name, or "default tier", "fixed route", "budget spent"
  std::string reason;  // the router's, or why it was not asked
  Route route;         // the route run
  double ms = 0;       // features, embedding and the router's call
  std::vector<NamedValue> features;
  std::vector<float> vector;  // the query's embedding, when explained
  std::vector<RouteScore> scores;
};

struct AutoRouteInput {
  SearchQuery search;  // cubes, text, k and filter (the mode is the tiers')
  std::int64_t reference_ms = 0;
  float lambda = 0;
  float ms_budget = 0;             // 0: none
  std::uint32_t token_budget = 0;  // context tokens left today; 0: none
  bool budget_spent = false;       // the day's tokens are gone: everything low
  CostTier default_tier = CostTier::mid;
  bool explain = false;     // keep the embedding in the view
  bool with_model = false;  // the executor's tiers run (temporal, expand, compress high)
  // Whether the tenant's policy allows a search mode (retrieve low is
  // lexical, mid and high hybrid).
  std::function<bool(SearchMode)> mode_allowed;
};

Route choose_auto_route(const IndexSet& indexes, const store::ReadTxn& txn,
                        const PluginRouter* router, std::string_view router_missing,
                        const AutoRouteInput& input, RouterView* view);

// For a fixed route explained: the features and embedding a router would
// read (at the router's dimension, else the first cube's), without asking it.
void describe_query(const IndexSet& indexes, const store::ReadTxn& txn, const PluginRouter* router,
                    const AutoRouteInput& input, RouterView* view);

}  // namespace memos::kernel::routing
