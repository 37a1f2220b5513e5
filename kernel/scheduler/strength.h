// strength.h — memory strength and retention (memos(7), "Scheduling"), after
// MemoryBank's forgetting curve: a memory's retention is R = exp(-t / S),
// t the time since its last recall in the tenant's time unit, S its
// strength. S starts at 1 and each recall adds strength_gain times the
// recall's weight, and resets t.
//
// Pure arithmetic on store values; no state, no locks.
#pragma once

#include <cstdint>

#include "memcube/store.h"
#include "policies/scheduler_settings.h"

namespace memos::kernel::scheduler {

// The uses of a memory that count as recalls.
enum class Recall {
  read,        // get: weight 1
  context,     // put into a chat's context by the chat's own retrieval: weight 1
  search_hit,  // returned in a search's top k: search_recall_weight
};

double recall_weight(Recall recall, const policies::SchedulerSettings& settings);

// t for retention: from the last recall, or from the item's creation if it
// was never recalled; never negative (a clock that went back).
double elapsed_units(const store::AccessStats& stats, std::int64_t created_at_ms,
                     std::int64_t now_ms, std::uint64_t unit_s);

// R = exp(-t / S), in (0, 1].
double retention(const store::AccessStats& stats, std::int64_t created_at_ms, std::int64_t now_ms,
                 std::uint64_t unit_s);

// When R drops below `threshold` (in (0, 1)) if nothing recalls the item:
// the moment t = S * -ln(threshold) units after its last recall (or
// creation), in Unix ms.
std::int64_t falls_below_at_ms(const store::AccessStats& stats, std::int64_t created_at_ms,
                               std::uint64_t unit_s, double threshold);

// How much a memory is worth keeping close: R times its importance, where
// an importance of 0 (none given) counts as kDefaultImportance so that
// memories nobody rated still rank by their retention.
constexpr double kDefaultImportance = 0.5;
double working_set_score(double retention, float importance);

}  // namespace memos::kernel::scheduler
