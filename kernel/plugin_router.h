// plugin_router.h — the tiers of one query through a router plugin
// (plugin.capnp RouteRequest; memos(7), "Routing").
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernel/routing/route_features.h"
#include "kernel/status.h"
#include "memos/vocabulary.h"
#include "plugins/loader/channel.h"

namespace memos::kernel {

// What the router described of itself (RouterCapabilities).
struct RouterInfo {
  std::string model;
  std::uint32_t dimension = 0;  // the query embedding it reads; 0: none
  std::string embedder;         // the embedder model it was trained with
};

struct RouterAsk {
  std::string_view query;
  std::vector<routing::NamedValue> features;
  std::vector<float> vector;                                      // info().dimension long
  std::vector<std::pair<Module, std::vector<CostTier>>> offered;  // every module, its tiers
  float lambda = 0;
  float ms_budget = 0;             // 0: none
  std::uint32_t token_budget = 0;  // 0: none
};

// One route the router weighed (RouteScore).
struct RouteScore {
  std::string route;
  float quality = 0, cost = 0, score = 0;
};

struct RouterAnswer {
  Route route;
  std::string reason;
  std::vector<RouteScore> scores;  // best first
};

class PluginRouter {
 public:
  PluginRouter(std::string name, std::shared_ptr<plugins::PluginChannel> channel,
               std::chrono::milliseconds timeout, RouterInfo info)
      : name_(std::move(name)),
        channel_(std::move(channel)),
        timeout_(timeout),
        info_(std::move(info)) {}

  // Asks the router. Thread-safe. Errors (call_plugin): unavailable when its
  // host died or timed out; internal for its own error, or an answer that
  // does not name every offered module once at a tier offered for it.
  Status route(const RouterAsk& ask, RouterAnswer* out) const;

  const std::string& name() const { return name_; }
  const RouterInfo& info() const { return info_; }

 private:
  std::string name_;
  std::shared_ptr<plugins::PluginChannel> channel_;
  std::chrono::milliseconds timeout_;
  RouterInfo info_;
};

}  // namespace memos::kernel
