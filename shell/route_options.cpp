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
  if (o.budget.empty() && o.route.empty()) {
    if (!o.reference.empty() || o.context_tokens != 0 || o.lambda != 0)
      throw UsageError{"--reference, --context-tokens and --lambda go with --budget or --route"};
    return {};
  }
  if (!conflicting.empty()) {
    throw UsageError{conflicting +
                     " does not go with --budget or --route (the retrieve tier chooses the mode)"};
  }
  auto routing = memos::make_routing(o.budget, o.route, o.lambda, chat);
  if (!routing) throw UsageError{"--budget/--route: " + routing.error().message};
  memos::Routing out = std::move(*routing);
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
