// sdk/routing.cpp — make_routing: a budget and a route as people write
// them, read one way for memctl and the C API.
#include "memos/routing.h"

namespace memos {

Result<Routing> make_routing(std::string_view budget, std::string_view route, float lambda,
                             bool chat) {
  auto refuse = [](std::string message) {
    return Error{ErrorCode::bad_request, std::move(message)};
  };
  Routing out;
  if (budget.empty() && route.empty()) {
    if (lambda != 0) return refuse("lambda goes with budget auto");
    return out;
  }
  const std::string malformed =
      "a route is MODULE=TIER,... (modules retrieve, temporal, expand, compress and, in a "
      "chat, answer, each once; tiers low, mid, high); got '" +
      std::string(route) + "'";
  if (budget == "auto") {
    // The router chooses the memory modules; the route may fix the answer:
    // it must leave every memory module at the base, whichever base.
    std::optional<CostTier> answer;
    auto named = parse_route(route, Route{}, &answer);
    if (!named) return refuse(malformed);
    if (*named != Route{} ||
        parse_route(route, Route::all(CostTier::low), &answer) != Route::all(CostTier::low))
      return refuse(
          "budget auto lets the router choose the memory modules: the route may name only answer");
    out.auto_route = true;
    out.lambda = lambda;
    out.answer = answer;
  } else {
    if (lambda != 0) return refuse("lambda goes with budget auto");
    std::optional<CostTier> base = budget.empty() ? CostTier::mid : parse_cost_tier(budget);
    if (!base)
      return refuse("a budget is low, mid, high or auto; got '" + std::string(budget) + "'");
    std::optional<CostTier> answer;
    out.route = parse_route(route, Route::all(*base), &answer);
    if (!out.route) return refuse(malformed);
    // A chat's budget sets the answer's tier too, unless the route names it.
    out.answer = answer ? answer : budget.empty() ? std::nullopt : base;
  }
  if (!chat) {
    if (!parse_route(route, Route{}))
      return refuse("the route names answer, a chat's module: a search answers nothing");
    out.answer.reset();
  }
  return out;
}

}  // namespace memos
