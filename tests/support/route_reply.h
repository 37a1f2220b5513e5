// route_reply.h — a router plugin's route reply, built as a router writes
// it: its tier for each module named, the reason, and one scored route.
// The router's unit test and the host protocol's fuzz seeds both send it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/schema/plugin.capnp.h"

namespace memos::testing {

using RouteTiers = std::vector<std::pair<std::string, std::string>>;  // module, tier

inline void fill_route(memos::plugin_wire::PluginResponse::Builder response,
                       const RouteTiers& tiers, std::string_view reason,
                       std::string_view scored_route, float quality) {
  auto text = [](std::string_view s) { return capnp::Text::Reader(s.data(), s.size()); };
  auto route = response.initRoute();
  route.setReason(text(reason));
  auto list = route.initTiers(static_cast<unsigned>(tiers.size()));
  for (unsigned i = 0; i < tiers.size(); ++i) {
    list[i].setModule(text(tiers[i].first));
    list[i].setTier(text(tiers[i].second));
  }
  auto scores = route.initScores(1);
  scores[0].setRoute(text(scored_route));
  scores[0].setQuality(quality);
}

}  // namespace memos::testing
