#include "kernel/scheduler/recalls.h"

namespace memos::kernel::scheduler {

policies::SchedulerSettings settings_for(const Config& config,
                                         const policies::TenantPolicy& policy) {
  return policies::resolve(config.scheduler.defaults, policy.scheduler);
}

void record_use(AccessLog& log, const policies::SchedulerSettings& settings, bool by_owner,
                store::CubeId cube, store::ItemId item, Recall kind, std::int64_t now_ms) {
  if (!by_owner) return log.record(cube, item, now_ms);
  log.record(cube, item, now_ms, recall_weight(kind, settings), settings.strength_gain);
}

}  // namespace memos::kernel::scheduler
