// policy_use.h — what a tenant's policy lets it use (memos-policy(5),
// [use]): the tiers, the retrievers a search mode runs on, the executor and
// its model. A request that needs what the policy leaves out is refused
// before any work, with permission_denied naming the key and the policy
// file. A list the policy does not set allows whatever memosd loads.
//
// Errors: permission_denied.
#pragma once

#include <string>

#include "kernel/config.h"
#include "kernel/status.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

Status check_tier(const policies::TenantPolicy& policy, store::Tier tier);
// The retrievers a search in `mode` runs (plugins.dense, .lexical and, for
// hybrid, all three with plugins.hybrid).
Status check_search_mode(const policies::TenantPolicy& policy, const Config& config,
                         SearchMode mode);
// The executor plugin and its model (chat, prefill).
Status check_executor(const policies::TenantPolicy& policy, const Config& config);

}  // namespace memos::kernel
