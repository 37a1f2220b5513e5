#include "shell/route_options.h"

#include <chrono>

#include "shell/time_args.h"

namespace memos::shell {

void add_route_options(CLI::App* cmd, RouteOptions& o) {
  cmd->add_option("--budget", o.budget,
                  "route through the memory modules: every one at low, mid or high, or the "
                  "router's choice (auto)")
      ->check(CLI::IsMember({"low", "mid", "high", "auto"}));
  cmd->add_option("--route", o.route,
                  "routing: tiers per module over --budget's (retrieve=high,expand=low)")
      ->type_name("MODULE=TIER,...");
  cmd->add_option("--lambda", o.lambda,
                  "routing: --budget auto's price of cost against recall (default: the "
                  "tenant's)")
      ->check(CLI::Range(0.0f, 100.0f));
  cmd->add_option("--reference", o.reference,
                  "routing: when the question is asked, for its time words (default now)")
      ->type_name("TIME");
  cmd->add_option("--context-tokens", o.context_tokens,
                  "routing: the context's token budget at compress=mid (default: memosd's)")
      ->check(CLI::Range(16u, 1u << 20));
}

memos::Routing convert_route_options(const RouteOptions& o, const std::string& conflicting,
                                     bool chat) {
  memos::Routing out;
  if (o.budget.empty() && o.route.empty()) {
    if (!o.reference.empty() || o.context_tokens != 0 || o.lambda != 0)
      throw UsageError{"--reference, --context-tokens and --lambda go with --budget or --route"};
    return out;
  }
  if (!conflicting.empty()) {
    throw UsageError{conflicting +
                     " does not go with --budget or --route (the retrieve tier chooses the mode)"};
  }
  const char* const malformed =
      "--route wants MODULE=TIER,... (modules retrieve, temporal, expand, compress and, in a "
      "chat, answer, each once; tiers low, mid, high); got '";
  if (o.budget == "auto") {
    // The router chooses the memory modules; the route may fix the answer.
    std::optional<memos::CostTier> answer;
    auto named = memos::parse_route(o.route, memos::Route{}, &answer);
    if (!named) throw UsageError{malformed + o.route + "'"};
    if (*named != memos::Route{} ||
        memos::parse_route(o.route, memos::Route::all(memos::CostTier::low), &answer) !=
            memos::Route::all(memos::CostTier::low))
      throw UsageError{
          "--budget auto lets the router choose the memory modules: --route may name only answer"};
    out.auto_route = true;
    out.lambda = o.lambda;
    out.answer = answer;
  } else {
    if (o.lambda != 0) throw UsageError{"--lambda goes with --budget auto"};
    const memos::CostTier base =
        o.budget.empty() ? memos::CostTier::mid : *memos::parse_cost_tier(o.budget);
    std::optional<memos::CostTier> answer;
    out.route = memos::parse_route(o.route, memos::Route::all(base), &answer);
    if (!out.route) throw UsageError{malformed + o.route + "'"};
    // A chat's budget sets the answer's tier too, unless the route names it.
    out.answer = answer ? answer : o.budget.empty() ? std::nullopt : std::optional(base);
  }
  if (!chat) {
    if (memos::parse_route(o.route, memos::Route{}))  // names no answer
      out.answer.reset();
    else
      throw UsageError{"--route names answer, a chat's module: a search answers nothing"};
  }
  if (!o.reference.empty()) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auto t = parse_time(o.reference, now);
    if (!t) {
      throw UsageError{
          "--reference wants a time such as 2026-11-27, 2026-11-27T14:30Z, "
          "@1767225600 or now; got '" +
          o.reference + "'"};
    }
    out.reference_ms = *t;
  }
  out.context_tokens = o.context_tokens;
  return out;
}

}  // namespace memos::shell
