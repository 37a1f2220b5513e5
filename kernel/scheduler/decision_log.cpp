#include "kernel/scheduler/decision_log.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace memos::kernel::scheduler {

const char* to_string(Action action) {
  switch (action) {
    case Action::promoted:
      return "promoted";
    case Action::demoted:
      return "demoted";
    case Action::evicted:
      return "evicted";
    case Action::archived:
      return "archived";
    case Action::restored:
      return "restored";
  }
  return "?";
}

void DecisionLog::add(Decision d) {
  spdlog::info("scheduler: {} {} of cube {} (tenant {}): {}", to_string(d.action), d.item,
               d.cube_name.empty() ? std::to_string(d.cube) : d.cube_name, d.tenant, d.reason);
  std::lock_guard lock(mutex_);
  ++counts_[static_cast<std::size_t>(d.action)];
  if (capacity_ == 0) return;
  if (entries_.size() >= capacity_) entries_.pop_front();
  entries_.push_back(std::move(d));
}

std::array<std::uint64_t, kActions> DecisionLog::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

std::vector<Decision> DecisionLog::list(store::TenantId tenant, store::CubeId cube,
                                        std::size_t max) const {
  std::vector<Decision> out;
  std::lock_guard lock(mutex_);
  for (auto it = entries_.rbegin(); it != entries_.rend() && out.size() < max; ++it) {
    if (it->tenant == tenant && (cube == 0 || it->cube == cube)) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace memos::kernel::scheduler
