// auto_distill.h — the scheduler's part of the parametric tier: a policy's
// parametric.distill_after lets a pass start a distillation (handlers/
// distill.h) when a cube's stable memories outgrow its adapter.
//
// Stable: active plaintext memories unchanged for parametric.stable_after_s.
// New: stable memories that are not among the sources of the cube's adapter
// parametric.distill_name (its head). When the new ones number
// distill_after or more, and no job for that adapter is open, the pass
// starts one over every stable memory of the cube (up to the distillation's
// bounds, the newest first), whose adapter is the next version of that
// name; the next pass finds them learned.
#pragma once

#include <cstdint>
#include <memory>

#include "kernel/services.h"
#include "kernel/status.h"
#include "memcube/store.h"
#include "policies/policy.h"

namespace memos::kernel {

// Starts the cube's distillation if `policy` (its owner's) asks for one
// now; `started` says whether it did. Worker thread (a scheduler pass).
// Errors: the store's; JobTable::add's. A cube its owner may not distill
// into (no executor, the parametric tier off) is passed over, not an error.
Status start_auto_distill(const Services& s, const store::Cube& cube,
                          const std::shared_ptr<const policies::TenantPolicy>& policy,
                          std::int64_t now_ms, bool* started);

}  // namespace memos::kernel
