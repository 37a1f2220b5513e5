// recalls.h — how the request handlers report that a memory was used: a
// read for the access statistics, and a recall that strengthens it
// (strength.h) when the reader is the cube's owner. Another tenant reading
// a shared cube never moves the owner's memory: its reads are counted, not
// recalled.
#pragma once

#include <cstdint>

#include "kernel/access_log.h"
#include "kernel/config.h"
#include "kernel/scheduler/strength.h"
#include "policies/policy.h"

namespace memos::kernel::scheduler {

// The scheduler's settings for the tenant `policy` covers: memosd.conf's
// [scheduler] with the policy's overrides.
policies::SchedulerSettings settings_for(const Config& config,
                                         const policies::TenantPolicy& policy);

// Thread-safe (the access log is).
void record_use(AccessLog& log, const policies::SchedulerSettings& settings, bool by_owner,
                store::CubeId cube, store::ItemId item, Recall kind, std::int64_t now_ms);

}  // namespace memos::kernel::scheduler
