#include "kernel/scheduler/activation_utility.h"

#include <algorithm>
#include <cmath>

namespace memos::kernel::scheduler {

double activation_utility(const store::Activation& a, std::int64_t now_ms,
                          std::int64_t half_life_ms) {
  half_life_ms = std::max<std::int64_t>(half_life_ms, 1);  // no division by 0
  const double age_ms = static_cast<double>(std::max(now_ms - a.created_at_ms, half_life_ms));
  const double idle_ms = static_cast<double>(std::max<std::int64_t>(now_ms - a.last_used_ms, 0));
  const double rate = (static_cast<double>(a.uses) + 1) * 3600000.0 / age_ms *
                      std::exp2(-idle_ms / static_cast<double>(half_life_ms));
  const double saved_ms = a.prefill_ms > 0
                              ? a.prefill_ms
                              : static_cast<double>(a.tokens.size()) * kUnknownPrefillMsPerToken;
  return rate * saved_ms / static_cast<double>(std::max<std::uint64_t>(a.size, 1));
}

}  // namespace memos::kernel::scheduler
