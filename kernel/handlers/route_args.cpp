#include "kernel/handlers/route_args.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernel/executor_reader.h"
#include "kernel/plugin_router.h"
#include "kernel/policy_use.h"
#include "kernel/router_ledger.h"
#include "kernel/store_vocabulary.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {

Status read_route_args(std::string_view budget, std::string_view route, std::int64_t reference_ms,
                       std::uint32_t context_tokens, float lambda, RouteArgs* out) {
  *out = {};
  if (budget.empty() && route.empty()) {
    if (reference_ms != 0 || context_tokens != 0 || lambda != 0)
      return Status::bad_request(
          "a reference time, context tokens and lambda need a budget or route");
    return {};
  }
  if (!std::isfinite(lambda) || lambda < 0 || lambda > 100)
    return Status::bad_request("lambda must be a number from 0 to 100 (0: the tenant's)");
  if (reference_ms < 0) return Status::bad_request("times must not be negative");
  out->reference_ms = reference_ms;
  out->context_tokens = context_tokens;
  out->lambda = lambda;
  const std::string malformed =
      "route '" + std::string(route.substr(0, 64)) +
      "' is malformed: MODULE=TIER,... with modules retrieve, temporal, expand, compress and, in "
      "a chat, answer (each once) and tiers low, mid, high";
  if (budget == "auto") {
    // The router chooses the memory modules; the route may fix the answer.
    std::optional<Route> over_mid = parse_route(route, Route{}, &out->answer);
    if (!over_mid) return Status::bad_request(malformed);
    if (*over_mid != Route{} ||
        parse_route(route, Route::all(CostTier::low), &out->answer) != Route::all(CostTier::low))
      return Status::bad_request(
          "budget auto lets the router choose every memory module: a route with it names only "
          "answer");
    out->auto_route = true;
    out->answer_named = out->answer.has_value();
    return {};
  }
  if (lambda != 0) return Status::bad_request("lambda is the router's: it needs budget auto");
  std::optional<CostTier> tier = budget.empty() ? CostTier::mid : parse_cost_tier(budget);
  if (!tier) {
    return Status::bad_request("budget '" + std::string(budget.substr(0, 32)) +
                               "' is unknown (low, mid, high or auto)");
  }
  // A budget runs each module at its tier or the best below it that this
  // memosd can run (resolve_route); a module the route names must run at
  // its tier. A module is named when its tier does not follow the base.
  out->route = parse_route(route, Route::all(*tier), &out->answer);
  std::optional<Route> over_low = parse_route(route, Route::all(CostTier::low), &out->answer);
  std::optional<Route> over_high = parse_route(route, Route::all(CostTier::high), &out->answer);
  if (!out->route || !over_low || !over_high) return Status::bad_request(malformed);
  for (std::size_t i = 0; i < kModules; ++i)
    out->named[i] = over_low->tiers[i] == over_high->tiers[i];
  out->answer_named = out->answer.has_value();
  if (!out->answer) out->answer = tier;
  return {};
}

namespace {

constexpr std::uint64_t kMinContextTokens = 16;  // routing.context_tokens' least

// The policy's [router] allows the loaded router ([use] routers).
bool router_allowed(const policies::TenantPolicy& policy, const PluginRouter& router) {
  return !policy.routers || std::find(policy.routers->begin(), policy.routers->end(),
                                      router.name()) != policy.routers->end();
}

bool reads_with_model(const Route& route) {
  for (Module m : {Module::temporal, Module::expand, Module::compress})
    if (route[m] == CostTier::high) return true;
  return false;
}

// A fixed route as this memosd runs it: each module the budget set at its
// tier or the best below it that runs; one the route names at its tier, or
// refused. Errors: unavailable.
Status fit_fixed_route(const RouteArgs& args, bool with_model, const std::string& no_model,
                       Route* out) {
  *out = routing::runnable(*args.route, with_model);
  for (std::size_t i = 0; i < kModules; ++i) {
    const Module m = static_cast<Module>(i);
    if (args.named[i] && (*out)[m] != (*args.route)[m])
      return Status::unavailable(std::string(to_string(m)) +
                                 "=high reads with the executor: " + no_model + "; use low or mid");
  }
  return {};
}

}  // namespace

Status resolve_route(const Services& s, const RequestContext& ctx, const store::ReadTxn& txn,
                     const SearchQuery& q, const RouteArgs& args, bool explain, bool on_lane,
                     ResolvedRoute* out) {
  *out = {};
  const policies::TenantPolicy& policy = *ctx.policy;
  const policies::RouterBudget& budget = policy.router;
  // The model tiers need the executor, and the tenant's leave to use it.
  std::string no_model;
  if (!s.executor) {
    no_model = "no executor is configured (executor.model)";
  } else if (Status st = check_executor(policy, s.config, s.executor->info().device); !st.ok()) {
    no_model = st.message;
  }
  const bool with_model = no_model.empty();
  bool spent = false;
  if (budget.tokens_per_day && s.router_ledger) {
    const std::uint64_t used = s.router_ledger->spent(ctx.tenant, now_ms(), txn);
    // Fewer tokens left than the smallest context compress makes is spent:
    // a context cut to nothing would answer nothing.
    spent = used + kMinContextTokens > *budget.tokens_per_day;
    if (!spent) {
      out->max_context_tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(
          *budget.tokens_per_day - used, std::numeric_limits<std::uint32_t>::max()));
    }
  }
  if (!args.auto_route) {
    if (Status st = fit_fixed_route(args, with_model, no_model, &out->route); !st.ok()) return st;
    if (spent && out->route != Route::all(CostTier::low))
      return Status{Code::quota_exceeded,
                    "the day's routing budget (policy [router] tokens_per_day = " +
                        std::to_string(*budget.tokens_per_day) +
                        ") is spent: use budget low or auto until midnight UTC"};
  }
  if (args.auto_route || explain) {
    routing::AutoRouteInput input;
    input.search = q;
    input.reference_ms = args.reference_ms;
    input.lambda = args.lambda != 0 ? args.lambda
                   : budget.lambda  ? static_cast<float>(*budget.lambda)
                                    : s.config.routing.lambda;
    input.default_tier = s.config.routing.default_tier;
    if (budget.default_tier) input.default_tier = *parse_cost_tier(*budget.default_tier);
    input.ms_budget = budget.ms_per_query ? static_cast<float>(*budget.ms_per_query) : 0;
    input.token_budget = out->max_context_tokens;
    input.budget_spent = spent;
    input.explain = explain;
    input.with_model = with_model;
    const Config& config = s.config;
    input.mode_allowed = [&policy, &config](SearchMode mode) {
      return check_search_mode(policy, config, mode).ok();
    };
    out->view.emplace();
    const PluginRouter* router = s.router.get();
    std::string missing = s.router_missing;
    if (router && !router_allowed(policy, *router)) {
      missing = "the tenant's policy allows no router " + router->name() + " ([use] routers)";
      router = nullptr;
    }
    if (args.auto_route) {
      out->route = routing::choose_auto_route(s.indexes, txn, router, missing, input, &*out->view);
    } else {
      routing::describe_query(s.indexes, txn, router, input, &*out->view);
      out->view->route = out->route;
    }
  }
  if (with_model && reads_with_model(out->route))
    out->model =
        std::make_unique<ExecutorReader>(*s.executor, on_lane ? nullptr : &s.executor_lane);
  return {};
}

void charge_route(const Services& s, const RequestContext& ctx, std::uint32_t context_tokens) {
  if (s.router_ledger) s.router_ledger->charge(ctx.tenant, context_tokens, now_ms());
}

void set_module_runs(capnp::List<wire::ModuleRun>::Builder out,
                     const std::vector<routing::ModuleRun>& runs) {
  for (unsigned i = 0; i < runs.size(); ++i) {
    out[i].setModule(to_string(runs[i].module));
    out[i].setTier(to_string(runs[i].tier));
    out[i].setMs(runs[i].ms);
    out[i].setDetail(runs[i].detail);
  }
}

void set_router_choice(wire::RouterChoice::Builder out, const routing::RouterView& view) {
  out.setSource(view.source);
  out.setReason(view.reason);
  out.setRoute(to_string(view.route));
  out.setMs(view.ms);
  auto features = out.initFeatures(static_cast<unsigned>(view.features.size()));
  for (unsigned i = 0; i < view.features.size(); ++i) {
    features[i].setName(view.features[i].name);
    features[i].setValue(view.features[i].value);
  }
  auto vector = out.initVector(static_cast<unsigned>(view.vector.size()));
  for (unsigned i = 0; i < view.vector.size(); ++i) vector.set(i, view.vector[i]);
  auto scores = out.initScores(static_cast<unsigned>(view.scores.size()));
  for (unsigned i = 0; i < view.scores.size(); ++i) {
    scores[i].setRoute(view.scores[i].route);
    scores[i].setQuality(view.scores[i].quality);
    scores[i].setCost(view.scores[i].cost);
    scores[i].setScore(view.scores[i].score);
  }
}

}  // namespace memos::kernel
