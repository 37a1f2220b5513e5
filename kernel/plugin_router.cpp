#include "kernel/plugin_router.h"

#include <capnp/message.h>

#include <algorithm>
#include <array>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_call.h"

namespace memos::kernel {
namespace {

constexpr std::size_t kMaxReplyBytes = 64 << 10;
constexpr unsigned kMaxScores = 8;
constexpr std::size_t kMaxReason = 256;

// Reads the answer's tiers into `out`: every offered module once, each at a
// tier offered for it. Returns "" or why not.
std::string read_tiers(capnp::List<plugin_wire::ModuleTier>::Reader tiers, const RouterAsk& ask,
                       Route* out) {
  std::array<bool, kModules + 1> seen{};
  for (auto t : tiers) {
    // Whole texts, NULs included: "retrieve\0x" is no module.
    std::optional<Module> module =
        parse_module(std::string_view(t.getModule().cStr(), t.getModule().size()));
    std::optional<CostTier> tier =
        parse_cost_tier(std::string_view(t.getTier().cStr(), t.getTier().size()));
    if (!module || !tier) return "the router named an unknown module or tier";
    auto& seen_it = seen[static_cast<std::size_t>(*module)];
    if (seen_it) return std::string("the router named ") + to_string(*module) + " twice";
    seen_it = true;
    auto offered = std::find_if(ask.offered.begin(), ask.offered.end(),
                                [&](const auto& o) { return o.first == *module; });
    if (offered == ask.offered.end() ||
        std::find(offered->second.begin(), offered->second.end(), *tier) == offered->second.end())
      return std::string("the router chose ") + to_string(*module) + "=" + to_string(*tier) +
             ", which memosd did not offer";
    (*out)[*module] = *tier;
  }
  for (const auto& [module, tiers_offered] : ask.offered) {
    if (!seen[static_cast<std::size_t>(module)])
      return std::string("the router left out ") + to_string(module);
  }
  return "";
}

}  // namespace

Status PluginRouter::route(const RouterAsk& ask, RouterAnswer* out) const {
  *out = {};
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<plugin_wire::PluginRequest>().initRoute();
  r.setQuery(capnp::Text::Reader(ask.query.data(), ask.query.size()));
  r.setTokenBudget(ask.token_budget);
  auto features = r.initFeatures(static_cast<unsigned>(ask.features.size()));
  for (unsigned i = 0; i < ask.features.size(); ++i) {
    features[i].setName(ask.features[i].name);
    features[i].setValue(ask.features[i].value);
  }
  auto vector = r.initVector(static_cast<unsigned>(ask.vector.size()));
  for (unsigned i = 0; i < ask.vector.size(); ++i) vector.set(i, ask.vector[i]);
  auto offered = r.initTiers(static_cast<unsigned>(ask.offered.size()));
  for (unsigned i = 0; i < ask.offered.size(); ++i) {
    offered[i].setModule(to_string(ask.offered[i].first));
    auto tiers = offered[i].initTiers(static_cast<unsigned>(ask.offered[i].second.size()));
    for (unsigned j = 0; j < ask.offered[i].second.size(); ++j)
      tiers.set(j, to_string(ask.offered[i].second[j]));
  }
  r.setLambda(ask.lambda);
  r.setMsBudget(ask.ms_budget);
  return call_plugin("router " + name_, *channel_, request_bytes(message), timeout_, kMaxReplyBytes,
                     [&](plugin_wire::PluginResponse::Reader response) -> std::string {
                       if (!response.isRoute()) return "the reply is not a route";
                       auto route = response.getRoute();
                       if (std::string why = read_tiers(route.getTiers(), ask, &out->route);
                           !why.empty())
                         return why;
                       out->reason = route.getReason();
                       if (out->reason.size() > kMaxReason) out->reason.resize(kMaxReason);
                       auto scores = route.getScores();
                       for (unsigned i = 0; i < scores.size() && i < kMaxScores; ++i) {
                         out->scores.push_back({scores[i].getRoute(), scores[i].getQuality(),
                                                scores[i].getCost(), scores[i].getScore()});
                       }
                       return "";
                     });
}

}  // namespace memos::kernel
