#include "kernel/scheduler/strength.h"

#include <algorithm>
#include <cmath>

namespace memos::kernel::scheduler {

double recall_weight(Recall recall, const policies::SchedulerSettings& settings) {
  return recall == Recall::search_hit ? settings.search_recall_weight : 1.0;
}

double elapsed_units(const store::AccessStats& stats, std::int64_t created_at_ms,
                     std::int64_t now_ms, std::uint64_t unit_s) {
  const std::int64_t since = stats.last_recall_ms > 0 ? stats.last_recall_ms : created_at_ms;
  const double ms = static_cast<double>(std::max<std::int64_t>(now_ms - since, 0));
  return ms / (1000.0 * static_cast<double>(std::max<std::uint64_t>(unit_s, 1)));
}

double retention(const store::AccessStats& stats, std::int64_t created_at_ms, std::int64_t now_ms,
                 std::uint64_t unit_s) {
  return std::exp(-elapsed_units(stats, created_at_ms, now_ms, unit_s) /
                  std::max(stats.strength, 1.0));
}

std::int64_t falls_below_at_ms(const store::AccessStats& stats, std::int64_t created_at_ms,
                               std::uint64_t unit_s, double threshold) {
  const std::int64_t since = stats.last_recall_ms > 0 ? stats.last_recall_ms : created_at_ms;
  const double units = std::max(stats.strength, 1.0) * -std::log(threshold);
  return since + static_cast<std::int64_t>(units * 1000.0 * static_cast<double>(unit_s));
}

double working_set_score(double retention, float importance) {
  return retention * (importance > 0 ? static_cast<double>(importance) : kDefaultImportance);
}

}  // namespace memos::kernel::scheduler
