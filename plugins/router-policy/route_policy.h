// route_policy.h — how router-policy chooses a route for one query: the
// route whose predicted quality less lambda times its cost is highest,
// among those memosd can run and the tenant's budget allows.
//
// Quality is the linear model of policy_weights.h (clamped to 0..1). Cost
// is normalised so that lambda means the same whatever the machine: half
// the route's milliseconds over the costliest route's, half its context
// tokens over the most any route hands on. With every route over budget,
// the cheapest the tiers allow is chosen and the reason says so (memosd
// has already routed a spent day's budget at low without asking).
//
// Errors: choose_route() returns why it cannot choose — an embedding of
// another length than the weights', a lambda that is not finite or is
// negative, or no route whose tiers memosd offers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "plugins/router-policy/policy_weights.h"

namespace memos::router_policy {

struct RouteQuery {
  std::vector<std::pair<std::string, float>> features;      // by name; unknown ones ignored
  std::vector<float> vector;                                // the query's embedding
  std::map<std::string, std::vector<std::string>> offered;  // module -> tiers memosd runs
  double lambda = 0;
  double ms_budget = 0;            // 0: none
  std::uint32_t token_budget = 0;  // 0: none
};

struct ScoredRoute {
  const RouteModel* route = nullptr;
  double quality = 0, cost = 0, score = 0;
};

struct RouteChoice {
  std::vector<ScoredRoute> ranked;  // the routes weighed, best first; ranked[0] is chosen
  std::string reason;
};

std::string choose_route(const PolicyWeights& weights, const RouteQuery& query, RouteChoice* out);

// [1, features..., embedding...] for the weights' inputs, a missing
// feature read as 0.
std::vector<double> model_inputs(const PolicyWeights& weights, const RouteQuery& query);

// A route's cost, normalised as above (0..1).
double normalised_cost(const PolicyWeights& weights, const RouteModel& route);

}  // namespace memos::router_policy
