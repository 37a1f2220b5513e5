// router-policy as a memosd plugin (memos-plugin(7), "Routers"): answers
// route requests with the route policy of its weights file, read once at
// create(). A weights file that is missing, unsafe or malformed fails
// create(): memosd then marks the plugin failed and routes at the default
// tier, rather than route by weights nobody can vouch for.
#include <cmath>
#include <stdexcept>

#include "memos/plugin_sdk.h"
#include "plugins/router-policy/policy_weights.h"
#include "plugins/router-policy/route_policy.h"

namespace {

using memos::plugin_sdk::Config;
using memos::plugin_sdk::Reply;
using memos::plugin_sdk::Request;
namespace pw = memos::plugin_wire;
namespace rp = memos::router_policy;

constexpr std::size_t kMaxScores = 8;
constexpr std::size_t kMaxRequestFeatures = 1024;
constexpr std::size_t kMaxModules = 64;

// `weights`, or beside the plugin when relative (memosd names the
// manifest's folder plugin_dir).
std::string weights_path(const Config& config) {
  std::string path = config.get("weights", "router-policy.weights");
  if (!path.empty() && path.front() != '/') {
    std::string dir = config.get("plugin_dir");
    if (dir.empty())
      throw std::invalid_argument("weights '" + path + "' is relative and no plugin_dir is set");
    path = dir + "/" + path;
  }
  return path;
}

class RouterPolicyPlugin final : public memos::plugin_sdk::Plugin {
 public:
  explicit RouterPolicyPlugin(const Config& config) {
    if (std::string why = rp::read_weights_file(weights_path(config), &weights_); !why.empty())
      throw std::invalid_argument("router-policy: weights refused: " + why);
  }

  memos_status handle(const Request& request, Reply reply) override {
    switch (request.which()) {
      case pw::PluginRequest::DESCRIBE:
        return describe(reply);
      case pw::PluginRequest::ROUTE:
        return route(request.getRoute(), reply);
      default:
        return fail(reply, MEMOS_ERR_UNSUPPORTED, "router-policy only describes and routes");
    }
  }

 private:
  memos_status describe(Reply reply) const {
    auto caps = reply.initCapabilities();
    caps.setKinds(MEMOS_KIND_ROUTER);
    auto r = caps.initRouter();
    r.setModel("linear quality per route, " + std::to_string(weights_.routes.size()) + " routes" +
               (weights_.note.empty() ? "" : "; " + weights_.note));
    r.setDimension(weights_.dimension);
    r.setEmbedder(weights_.embedder);
    auto names = r.initFeatures(static_cast<unsigned>(weights_.features.size()));
    for (unsigned i = 0; i < weights_.features.size(); ++i) names.set(i, weights_.features[i]);
    return MEMOS_OK;
  }

  memos_status route(pw::RouteRequest::Reader in, Reply reply) const {
    rp::RouteQuery q;
    if (in.getFeatures().size() > kMaxRequestFeatures || in.getTiers().size() > kMaxModules ||
        in.getVector().size() > rp::kMaxDimension)
      return fail(reply, MEMOS_ERR_INVALID, "the route request is larger than any router reads");
    for (auto f : in.getFeatures()) q.features.emplace_back(f.getName(), f.getValue());
    for (float v : in.getVector()) q.vector.push_back(v);
    for (auto m : in.getTiers()) {
      auto& tiers = q.offered[m.getModule()];
      for (auto t : m.getTiers()) tiers.emplace_back(t);
    }
    q.lambda = in.getLambda();
    q.ms_budget = in.getMsBudget();
    q.token_budget = in.getTokenBudget();
    if (!std::isfinite(q.ms_budget) || q.ms_budget < 0)
      return fail(reply, MEMOS_ERR_INVALID, "msBudget must be finite and 0 or more");
    rp::RouteChoice choice;
    if (std::string why = rp::choose_route(weights_, q, &choice); !why.empty())
      return fail(reply, MEMOS_ERR_INVALID, why);
    auto out = reply.initRoute();
    out.setReason(choice.reason);
    const rp::RouteModel& best = *choice.ranked.front().route;
    auto tiers = out.initTiers(static_cast<unsigned>(best.tiers.size()));
    for (unsigned i = 0; i < best.tiers.size(); ++i) {
      tiers[i].setModule(best.tiers[i].first);
      tiers[i].setTier(best.tiers[i].second);
    }
    const unsigned n = static_cast<unsigned>(std::min(kMaxScores, choice.ranked.size()));
    auto scores = out.initScores(n);
    for (unsigned i = 0; i < n; ++i) {
      scores[i].setRoute(choice.ranked[i].route->name);
      scores[i].setQuality(static_cast<float>(choice.ranked[i].quality));
      scores[i].setCost(static_cast<float>(choice.ranked[i].cost));
      scores[i].setScore(static_cast<float>(choice.ranked[i].score));
    }
    return MEMOS_OK;
  }

  rp::PolicyWeights weights_;  // read once; calls only read it
};

}  // namespace

MEMOS_PLUGIN(RouterPolicyPlugin, "router-policy", "1.0.0", MEMOS_KIND_ROUTER)
