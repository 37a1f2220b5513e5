#include "kernel/chat_adapters.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <utility>

#include "kernel/policy_use.h"

namespace memos::kernel {
namespace {

constexpr std::size_t kMaxAdaptersPerChat = 8;
constexpr float kMaxScale = 16;

}  // namespace

Status chat_adapters(const Services& s, const PluginExecutor* executor,
                     const policies::TenantPolicy& policy, const store::ReadTxn& txn,
                     const store::Cube& cube, const std::vector<policies::AdapterChoice>& named,
                     bool no_adapters, std::vector<AdapterRef>* adapters,
                     std::vector<std::string>* labels, std::string* set) {
  adapters->clear();
  labels->clear();
  set->clear();
  if (no_adapters) return {};
  const bool by_policy = named.empty();
  const auto& choices = by_policy ? policy.default_adapters : named;
  if (choices.empty()) return {};
  if (!policy.tiers.parametric) {
    if (by_policy) return {};
    return check_tier(policy, store::Tier::parametric);
  }
  if (!s.blobs || !executor) return Status::unavailable("adapters need an executor", false);
  if (choices.size() > kMaxAdaptersPerChat) {
    return Status::bad_request("at most " + std::to_string(kMaxAdaptersPerChat) +
                               " adapters in one chat");
  }
  std::set<std::string> seen;
  std::vector<std::pair<std::string, AdapterRef>> picked;
  const std::string& model = executor->info().key.model_hash;
  for (const auto& choice : choices) {
    if (!seen.insert(choice.name).second) {
      return Status::bad_request("adapter '" + choice.name + "' is named twice");
    }
    store::Item item;
    store::Status found = txn.find_param(cube.id, choice.name, &item);
    const bool absent = found.code == store::Errc::not_found || (found.ok() && item.deleted());
    if (absent && by_policy) continue;  // a default the cube does not hold
    if (absent) return Status::not_found("no adapter named '" + choice.name + "' in the cube");
    if (!found.ok()) return Status::from(found);
    if (item.state == store::State::archived) {
      if (by_policy) continue;
      return Status::conflict("adapter '" + choice.name + "' is archived");
    }
    const store::Parametric& p = *item.param;
    if (p.base_model != model) {
      // The policy's defaults serve the model they were made for: a chat
      // answered by another (executor.models) runs without them.
      if (by_policy) continue;
      return Status::conflict("adapter '" + choice.name + "' is bound to model " +
                              p.base_model.substr(0, 12) + ", the executor runs " +
                              model.substr(0, 12) + " (add it again for this model)");
    }
    const float scale = choice.scale != 0 ? choice.scale : p.scale;
    if (!std::isfinite(scale) || std::fabs(scale) > kMaxScale) {
      return Status::bad_request("an adapter's scale must be a number in [-16, 16]");
    }
    // Another node's adapter (cluster mode) comes from the cluster's bucket.
    if (store::Status st = s.blobs->make_local(p.blob, p.size); !st.ok()) {
      return Status::from(st).prefixed("adapter '" + choice.name + "''s file");
    }
    picked.emplace_back(choice.name,
                        AdapterRef{s.blobs->path(p.blob), p.blob, p.size, scale, p.kind});
  }
  for (const auto& [name, ref] : picked) adapters->push_back(ref);
  *set = adapter_set_text(adapters);
  // The labels in the set's order, for the reply.
  for (const AdapterRef& a : *adapters) {
    for (auto& [name, ref] : picked) {
      if (name.empty() || ref.digest != a.digest || ref.scale != a.scale || ref.kind != a.kind)
        continue;
      char scale[32];
      std::snprintf(scale, sizeof scale, "%g", static_cast<double>(a.scale));
      labels->push_back(name + "*" + scale);
      name.clear();
      break;
    }
  }
  return {};
}

}  // namespace memos::kernel
