// activation_utility.h — what keeping a stored KV state is worth: the
// activation tier evicts the tenant's least useful state first
// (activation.eviction = "utility"), and the scheduler ranks states by it.
//
// A state earns its disk by the prefill time its hits save, so its worth
// per byte is
//
//   utility = rate (hits per hour) × saved (ms per hit) ÷ size (bytes)
//
//   rate  = (uses + 1) × 3600000 / age_ms × 2^(-idle_ms / half_life_ms)
//   age   = max(now − created_at, half_life)  (ms)
//   idle  = max(now − last_used, 0)           (ms)
//   saved = prefill_ms, or tokens × kUnknownPrefillMsPerToken when unknown
//
// `uses + 1` counts the prefill that made the state as its first use, so a
// new state is worth something before its first hit. The age is at least one
// half-life so that a state made a moment ago does not get a huge rate from
// one use over a tiny age. The halving per half-life since the last use lets
// a state that was popular once but is no longer used make way, as LRU
// would, however many hits it had. Dividing by the size makes a small state
// that saves as much worth more than a large one: evicting it frees less.
#pragma once

#include <cstdint>

#include "memcube/activation.h"

namespace memos::kernel::scheduler {

// The prefill time per token assumed for a state whose prefill_ms is 0:
// states made before memosd recorded the prefill time. 0.5 ms per token is
// about a small model's prefill on a few CPU cores: a guess of the right
// order is enough to rank such states beside measured ones.
inline constexpr double kUnknownPrefillMsPerToken = 0.5;

// The state's utility at `now_ms` (both times in ms since the epoch): hit
// rate per hour × milliseconds saved per hit ÷ bytes, as above; ≥ 0, larger
// is worth keeping. `half_life_ms` is activation.eviction_half_life_s in ms
// (below 1: taken as 1). A pure function: thread-safe, no errors.
double activation_utility(const store::Activation& a, std::int64_t now_ms,
                          std::int64_t half_life_ms);

}  // namespace memos::kernel::scheduler
