// memos/routing.h — what a routed search answers (Client::search_routed;
// memos(7), "Routing"): the hits, the context a model would be handed, and
// each query-time module's run (ModuleRun, in memos/types.h, which chat
// replies carry too).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memos/types.h"

namespace memos {

// A routed search's context (Client::search_routed; memos(7), "Routing"):
// what a model would be handed, in order.
struct ContextPiece {
  std::string cube{};
  std::uint64_t item_id = 0;
  std::string text{};              // the memory's text, or the sentences compress kept
  std::uint32_t tokens = 0;        // estimated: a quarter of the bytes
  std::uint64_t neighbour_of = 0;  // 0: a hit; else the hit whose neighbouring turn it is
};

struct RoutedSearch {
  std::vector<Hit> hits{};
  std::vector<ContextPiece> context{};
  std::uint32_t context_tokens = 0;
  std::vector<ModuleRun> modules{};  // retrieve, temporal, expand, compress
  // Budget "auto", or a route explained (SearchOptions::explain): how the
  // tiers were chosen.
  std::optional<RouterChoice> router{};
};

// The Routing of a budget and a route as people write them (memctl(1)
// --budget and --route; memos.h's memos_routing): `budget` "" (only the
// route), "low", "mid" or "high" (every module at that tier, the answer
// too in a chat, under what `route` names) or "auto" (the router chooses
// the memory modules; `route` may name only answer); `route`
// "MODULE=TIER,..." over the budget's tiers. `lambda` goes with auto
// only. `chat`: whether answer may be named. Neither budget nor route: not
// routed. Errors: bad_request, the message saying which rule was broken.
Result<Routing> make_routing(std::string_view budget, std::string_view route, float lambda,
                             bool chat);

}  // namespace memos
