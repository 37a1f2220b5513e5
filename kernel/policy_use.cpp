#include "kernel/policy_use.h"

#include <algorithm>

namespace memos::kernel {
namespace {

Status refused(const policies::TenantPolicy& policy, const std::string& what) {
  return Status::permission_denied(
      what + " (" + (policy.file.empty() ? std::string("its policy") : policy.file) + ")");
}

bool listed(const std::optional<std::vector<std::string>>& list, const std::string& name) {
  return !list || std::find(list->begin(), list->end(), name) != list->end();
}

}  // namespace

Status check_tier(const policies::TenantPolicy& p, store::Tier tier) {
  bool ok = tier == store::Tier::plaintext    ? p.tiers.plaintext
            : tier == store::Tier::activation ? p.tiers.activation
                                              : p.tiers.parametric;
  if (ok) return {};
  const char* name = tier == store::Tier::plaintext    ? "plaintext"
                     : tier == store::Tier::activation ? "activation"
                                                       : "parametric";
  return refused(
      p, std::string("the tenant may not use the ") + name + " tier: use.tiers leaves it out");
}

Status check_search_mode(const policies::TenantPolicy& p, const Config& c, SearchMode mode) {
  if (mode != SearchMode::lexical && !listed(p.embedders, c.plugins.embedder)) {
    return refused(p, "a " + std::string(to_string(mode)) + " search embeds the query with '" +
                          c.plugins.embedder + "', which use.embedders leaves out");
  }
  if (!p.retrievers) return {};
  std::vector<std::string> needed;
  if (mode != SearchMode::lexical) needed.push_back(c.plugins.dense);
  if (mode != SearchMode::dense) needed.push_back(c.plugins.lexical);
  if (mode == SearchMode::hybrid) needed.push_back(c.plugins.hybrid);
  for (const auto& name : needed) {
    if (!listed(p.retrievers, name)) {
      return refused(p, "a " + std::string(to_string(mode)) + " search runs on '" + name +
                            "', which use.retrievers leaves out");
    }
  }
  return {};
}

Status check_embedder(const policies::TenantPolicy& p, const Config& c) {
  if (listed(p.embedders, c.plugins.embedder)) return {};
  return refused(p, "memosd embeds memories with '" + c.plugins.embedder +
                        "', which use.embedders leaves out");
}

std::optional<std::uint64_t> activation_budget_mb(const policies::TenantPolicy& p) {
  if (p.activation_max_mb && p.max_blob_mb) return std::min(*p.activation_max_mb, *p.max_blob_mb);
  return p.activation_max_mb ? p.activation_max_mb : p.max_blob_mb;
}

Status check_executor(const policies::TenantPolicy& p, const Config& c, std::string_view device) {
  if (!listed(p.executors, c.executor.plugin)) {
    return refused(p, "the executor '" + c.executor.plugin + "' is not in use.executors");
  }
  if (p.executor_model && *p.executor_model != c.executor.model) {
    return refused(p, "memosd's executor runs '" + c.executor.model +
                          "', not the model use.executor_model names ('" + *p.executor_model +
                          "')");
  }
  if (p.executor_device) {
    const std::string_view runs_on = device.empty() || device == "CPU" ? "cpu" : "gpu";
    if (*p.executor_device != runs_on) {
      return refused(p, "memosd's executor runs on " +
                            (runs_on == "cpu" ? std::string("the CPU") : std::string(device)) +
                            ", and use.executor_device asks for " + *p.executor_device);
    }
  }
  return {};
}

}  // namespace memos::kernel
