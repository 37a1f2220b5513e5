#include "plugins/router-policy/route_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace memos::router_policy {
namespace {

bool offered(const RouteQuery& query, const RouteModel& route) {
  for (const auto& [module, tier] : route.tiers) {
    auto it = query.offered.find(module);
    if (it == query.offered.end() ||
        std::find(it->second.begin(), it->second.end(), tier) == it->second.end())
      return false;
  }
  // Every module memosd runs must be routed.
  for (const auto& entry : query.offered) {
    if (std::none_of(route.tiers.begin(), route.tiers.end(),
                     [&entry](const auto& t) { return t.first == entry.first; }))
      return false;
  }
  return true;
}

bool within_budget(const RouteQuery& query, const RouteModel& route) {
  if (query.ms_budget > 0 && route.ms > query.ms_budget) return false;
  if (query.token_budget > 0 && route.tokens > query.token_budget) return false;
  return true;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

std::vector<double> model_inputs(const PolicyWeights& weights, const RouteQuery& query) {
  std::vector<double> x(weights.inputs(), 0.0);
  x[0] = 1;
  for (std::size_t i = 0; i < weights.features.size(); ++i) {
    for (const auto& [name, value] : query.features) {
      if (name == weights.features[i] && std::isfinite(value)) x[1 + i] = value;
    }
  }
  const std::size_t base = 1 + weights.features.size();
  for (std::size_t d = 0; d < weights.dimension && d < query.vector.size(); ++d)
    x[base + d] = std::isfinite(query.vector[d]) ? query.vector[d] : 0.0;
  return x;
}

double normalised_cost(const PolicyWeights& weights, const RouteModel& route) {
  double max_ms = 0, max_tokens = 0;
  for (const auto& r : weights.routes) {
    max_ms = std::max(max_ms, r.ms);
    max_tokens = std::max(max_tokens, r.tokens);
  }
  return 0.5 * (max_ms > 0 ? route.ms / max_ms : 0) +
         0.5 * (max_tokens > 0 ? route.tokens / max_tokens : 0);
}

std::string choose_route(const PolicyWeights& weights, const RouteQuery& query, RouteChoice* out) {
  *out = {};
  if (!std::isfinite(query.lambda) || query.lambda < 0)
    return "lambda must be a finite number, 0 or more";
  if (query.vector.size() != weights.dimension) {
    return "the query's embedding has " + std::to_string(query.vector.size()) +
           " dimensions; the weights read " + std::to_string(weights.dimension) + " (" +
           weights.embedder + ")";
  }
  const std::vector<double> x = model_inputs(weights, query);
  std::vector<ScoredRoute> runnable, fitting;
  for (const auto& route : weights.routes) {
    if (!offered(query, route)) continue;
    ScoredRoute s{&route, 0, normalised_cost(weights, route), 0};
    for (std::size_t i = 0; i < x.size(); ++i) s.quality += route.quality[i] * x[i];
    s.quality = std::clamp(s.quality, 0.0, 1.0);
    s.score = s.quality - query.lambda * s.cost;
    runnable.push_back(s);
    if (within_budget(query, route)) fitting.push_back(s);
  }
  if (runnable.empty()) return "none of the weights' routes uses only tiers memosd offers";
  auto by_score = [](const ScoredRoute& a, const ScoredRoute& b) {
    return a.score != b.score ? a.score > b.score : a.cost < b.cost;
  };
  if (!fitting.empty()) {
    std::sort(fitting.begin(), fitting.end(), by_score);
    out->ranked = std::move(fitting);
    const ScoredRoute& best = out->ranked.front();
    out->reason = "best predicted recall " + fixed(best.quality, 3) + " - " +
                  fixed(query.lambda, 2) + " x cost " + fixed(best.cost, 3);
    if (runnable.size() > out->ranked.size())
      out->reason +=
          " (" + std::to_string(runnable.size() - out->ranked.size()) + " routes over budget)";
    return "";
  }
  std::sort(runnable.begin(), runnable.end(),
            [](const ScoredRoute& a, const ScoredRoute& b) { return a.cost < b.cost; });
  out->ranked = std::move(runnable);
  out->reason = "every route is over the budget: the cheapest";
  return "";
}

}  // namespace memos::router_policy
