// route_args.h — a request's budget or route (memos(7), "Routing"), as the
// search and chat requests carry it: the tiers the query-time memory
// modules run at, and the question's reference time and context budget;
// and what each module did, as their replies carry it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "ipc/schema/memos.capnp.h"
#include "kernel/routing/routed_search.h"
#include "kernel/status.h"
#include "memos/vocabulary.h"

namespace memos::kernel {

struct RouteArgs {
  std::optional<Route> route;        // empty: not routed
  std::int64_t reference_ms = 0;     // 0: now
  std::uint32_t context_tokens = 0;  // 0: routing.context_tokens
};

// `budget` sets every module's tier ("low", "mid", "high": each module at
// it or the best below it this memosd runs), then `route` ("MODULE=TIER,...")
// names tiers per module. Both empty: not routed, and then a reference time
// or context budget is an error. Errors: bad_request (an unknown budget,
// a malformed route, a negative time, options without a route),
// unavailable (budget "auto": no router plugin is loaded; a route naming a
// high tier that reads with an executor, not built yet).
Status read_route_args(std::string_view budget, std::string_view route, std::int64_t reference_ms,
                       std::uint32_t context_tokens, RouteArgs* out);

// Fills `out` (sized to `runs`) with each module's name, tier, time and
// detail.
void set_module_runs(capnp::List<wire::ModuleRun>::Builder out,
                     const std::vector<routing::ModuleRun>& runs);

}  // namespace memos::kernel
