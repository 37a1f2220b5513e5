// route_args.h — a request's budget or route (memos(7), "Routing"), as the
// search and chat requests carry it: the tiers the query-time memory
// modules run at (fixed, or the router's for budget "auto"), and the
// question's reference time and context budget; and what each module did
// and how the tiers were chosen, as their replies carry it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "ipc/schema/memos.capnp.h"
#include "kernel/handlers/request_context.h"
#include "kernel/routing/auto_route.h"
#include "kernel/routing/routed_search.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "memos/vocabulary.h"

namespace memos::kernel {

struct RouteArgs {
  std::optional<Route> route;  // a fixed route
  // The modules the route text names: those must run at their tier; the
  // others, set by the budget, run at it or the best below it that runs.
  std::array<bool, kModules> named{};
  bool auto_route = false;           // budget "auto": the router chooses
  std::int64_t reference_ms = 0;     // 0: now
  std::uint32_t context_tokens = 0;  // 0: routing.context_tokens
  float lambda = 0;                  // 0: the tenant's
  // A chat's answer tier (the executor that answers: answer_models.h): the
  // route's answer=TIER, else a fixed budget's tier; unset: mid with a
  // fixed route, the tenant's default tier with "auto".
  std::optional<CostTier> answer;
  bool answer_named = false;  // the route names it (a search refuses that)

  bool routed() const { return route || auto_route; }
};

// `budget` sets every module's tier ("low", "mid", "high": each module at
// it or the best below it this memosd runs; "auto": the router chooses),
// then `route` ("MODULE=TIER,...") names tiers per module, answer included
// (with "auto", answer alone). Both empty: not routed, and then a reference
// time, context budget or lambda is an error.
// Errors: bad_request (an unknown budget, a malformed route, a route naming
// a memory module with "auto", a negative time, a lambda not in [0, 100],
// options without a route). Whether its tiers run here is resolve_route's.
// A search refuses answer_named itself.
Status read_route_args(std::string_view budget, std::string_view route, std::int64_t reference_ms,
                       std::uint32_t context_tokens, float lambda, RouteArgs* out);

// The route a routed request runs: its fixed one, or for "auto" the
// router's choice (routing/auto_route.h) for query `q` (its cubes, text, k
// and filter) under the tenant's policy: its [router] lambda, default tier,
// ms_per_query and what is left of tokens_per_day (the router is offered
// that, and the context is cut to it; spent, "auto" runs every module low).
// `view` is filled for "auto", and for a fixed route when `explain`.
struct ResolvedRoute {
  Route route;
  std::uint32_t max_context_tokens = 0;  // what is left of the day; 0: no bound
  std::optional<routing::RouterView> view;
  std::unique_ptr<routing::ModelReader> model;  // set when a tier reads with the executor
};
// `model` is set when a tier reads with the executor (ExecutorReader;
// `on_lane`: the caller runs on the executor lane).
// Errors: unavailable (the route names temporal, expand or compress high
// and there is no executor, or the tenant's policy does not let it use
// it), quota_exceeded (a fixed route above low when the day's tokens are
// spent); otherwise none (routing falls back to the default tier, and says
// why).
Status resolve_route(const Services& s, const RequestContext& ctx, const store::ReadTxn& txn,
                     const SearchQuery& q, const RouteArgs& args, bool explain, bool on_lane,
                     ResolvedRoute* out);

// Counts a routed request's context tokens against the tenant's day.
void charge_route(const Services& s, const RequestContext& ctx, std::uint32_t context_tokens);

// Fills `out` (sized to `runs`) with each module's name, tier, time and
// detail.
void set_module_runs(capnp::List<wire::ModuleRun>::Builder out,
                     const std::vector<routing::ModuleRun>& runs);
void set_router_choice(wire::RouterChoice::Builder out, const routing::RouterView& view);

}  // namespace memos::kernel
