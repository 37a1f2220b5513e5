// chat_adapters.h — which LoRA adapters a chat runs with (memos(7), "Tiers"):
// the names it gives, or its policy's defaults, resolved to the cube's
// parametric items and then to what the executor is sent.
#pragma once

#include <string>
#include <vector>

#include "kernel/plugin_executor.h"
#include "kernel/services.h"
#include "kernel/status.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

// The adapters a chat (or a prefill for it, the scheduler's included) runs
// with on `executor` (the model that answers; null: none), found in its
// cube: those it names, else those of `policy`'s parametric.adapters that
// the cube holds and that were made for `executor`'s model (the chat's
// tenant's policy: its peer's; the scheduler's: the owner's). `labels` gets
// "NAME*SCALE" of each, `adapters` the executor's references, sorted as the
// set's canonical text, which `set` receives (the activation key's
// adapters).
// Errors: not_found (a named adapter the cube lacks or that was removed),
// permission_denied (use.tiers leaves parametric out), conflict (a named
// adapter bound to another model than `executor`'s, or not active),
// bad_request (more than 8, a name twice), unavailable (no blob store or
// no executor).
Status chat_adapters(const Services& s, const PluginExecutor* executor,
                     const policies::TenantPolicy& policy, const store::ReadTxn& txn,
                     const store::Cube& cube, const std::vector<policies::AdapterChoice>& named,
                     bool no_adapters, std::vector<AdapterRef>* adapters,
                     std::vector<std::string>* labels, std::string* set);

}  // namespace memos::kernel
