#include "kernel/access_log.h"

#include <algorithm>

namespace memos::kernel {

void AccessLog::record(store::CubeId cube, store::ItemId item, std::int64_t now_ms, double recall,
                       double gain) {
  std::lock_guard lock(mutex_);
  auto& u = pending_[{cube, item}];
  u.cube = cube;
  u.item = item;
  u.hits += 1;
  u.last_access_ms = std::max(u.last_access_ms, now_ms);
  if (recall > 0) {
    u.recalls += recall;
    u.strength += recall * gain;
    u.last_recall_ms = std::max(u.last_recall_ms, now_ms);
  }
}

std::vector<store::AccessUpdate> AccessLog::take() {
  std::map<std::pair<store::CubeId, store::ItemId>, store::AccessUpdate> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  std::vector<store::AccessUpdate> out;
  out.reserve(batch.size());
  for (auto& entry : batch) out.push_back(entry.second);
  return out;
}

}  // namespace memos::kernel
