#include "kernel/scheduler/working_set_selection.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace memos::kernel::scheduler {

Selection select_working_set(const std::vector<store::ItemId>& previous,
                             std::vector<Candidate> candidates, std::uint32_t budget_tokens,
                             std::size_t max_items) {
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.item < b.item;
  });
  std::unordered_set<store::ItemId> chosen;
  std::vector<store::ItemId> by_score;
  std::uint64_t used = 0;
  for (const Candidate& c : candidates) {
    if (chosen.size() >= max_items) break;
    if (used + c.tokens > budget_tokens) continue;
    used += c.tokens;
    chosen.insert(c.item);
    by_score.push_back(c.item);
  }
  Selection out;
  out.tokens = static_cast<std::uint32_t>(used);
  std::unordered_set<store::ItemId> stayed;
  for (store::ItemId id : previous) {
    if (chosen.contains(id) && stayed.insert(id).second) {
      out.items.push_back(id);
    } else if (!chosen.contains(id)) {
      out.left.push_back(id);
    }
  }
  for (store::ItemId id : by_score) {
    if (stayed.contains(id)) continue;
    out.items.push_back(id);
    out.joined.push_back(id);
  }
  return out;
}

std::uint32_t estimate_tokens(std::string_view text) {
  return static_cast<std::uint32_t>(std::max<std::size_t>(text.size() / 4, 1) + 2);
}

double calibrate_estimate(double current, double measured) {
  if (!std::isfinite(measured) || measured <= 0) return current;
  measured = std::clamp(measured, kMinCalibration, kMaxCalibration);
  if (measured < current && measured >= current * (1 - kCalibrationSlack)) return current;
  return measured;
}

}  // namespace memos::kernel::scheduler
