// policy_use.h — what a tenant's policy lets it use (memos-policy(5),
// [use]): the tiers, the retrievers a search mode runs on, the embedder, the
// executor and its model. A request that needs what the policy leaves out is refused
// before any work, with permission_denied naming the key and the policy
// file. A list the policy does not set allows whatever memosd loads.
//
// Errors: permission_denied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernel/config.h"
#include "kernel/status.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

Status check_tier(const policies::TenantPolicy& policy, store::Tier tier);
// The retrievers a search in `mode` runs (plugins.dense, .lexical and, for
// hybrid, all three with plugins.hybrid), and the embedder that dense and
// hybrid searches embed the query with.
Status check_search_mode(const policies::TenantPolicy& policy, const Config& config,
                         SearchMode mode);
// The embedder (plugins.embedder): a new cube is bound to it, and every
// memory added to one is embedded by it.
Status check_embedder(const policies::TenantPolicy& policy, const Config& config);
// The tenant's activation budget in MiB: the lower of activation.max_mb
// and max_blob_mb (activation states are the only blobs a tenant holds so
// far; the parametric tier will take its share of max_blob_mb first, since
// its items cannot be evicted). nullopt: neither is set, the configured
// activation.tenant_max_mb applies.
std::optional<std::uint64_t> activation_budget_mb(const policies::TenantPolicy& policy);
// The executor plugin, its model and the device it runs on (chat,
// prefill): `device` is what the loaded executor reported ("CPU", "CUDA0").
Status check_executor(const policies::TenantPolicy& policy, const Config& config,
                      std::string_view device);

}  // namespace memos::kernel
