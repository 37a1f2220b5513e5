#include "kernel/handlers/route_args.h"

#include <algorithm>
#include <string>

namespace memos::kernel {
namespace {

// The modules whose high tier reads with an executor (not built yet).
constexpr Module kExecutorModules[] = {Module::temporal, Module::expand, Module::compress};

}  // namespace

Status read_route_args(std::string_view budget, std::string_view route, std::int64_t reference_ms,
                       std::uint32_t context_tokens, RouteArgs* out) {
  *out = {};
  if (budget.empty() && route.empty()) {
    if (reference_ms != 0 || context_tokens != 0)
      return Status::bad_request("a reference time and context tokens need a budget or route");
    return {};
  }
  if (budget == "auto")
    return Status::unavailable(
        "budget auto needs a router plugin (plugins.router); none is loaded");
  std::optional<CostTier> tier = budget.empty() ? CostTier::mid : parse_cost_tier(budget);
  if (!tier) {
    return Status::bad_request("budget '" + std::string(budget.substr(0, 32)) +
                               "' is unknown (low, mid, high or auto)");
  }
  // A budget runs each module at its tier or the best below it that this
  // memosd can run; a route that names an unavailable tier is refused.
  Route base = Route::all(*tier);
  for (Module m : kExecutorModules) base[m] = std::min(base[m], CostTier::mid);
  out->route = parse_route(route, base);
  if (!out->route) {
    return Status::bad_request("route '" + std::string(route.substr(0, 64)) +
                               "' is malformed: MODULE=TIER,... with modules retrieve, temporal, "
                               "expand, compress (each once) and tiers low, mid, high");
  }
  for (Module m : kExecutorModules) {
    if ((*out->route)[m] == CostTier::high) {
      return Status::unavailable(std::string(to_string(m)) +
                                 "=high reads with an executor, which this memosd does not do "
                                 "yet: use low or mid");
    }
  }
  if (reference_ms < 0) return Status::bad_request("times must not be negative");
  out->reference_ms = reference_ms;
  out->context_tokens = context_tokens;
  return {};
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

}  // namespace memos::kernel
