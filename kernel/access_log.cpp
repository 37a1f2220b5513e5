#include "kernel/access_log.h"

#include <algorithm>

namespace memos::kernel {

void AccessLog::record(store::CubeId cube, store::ItemId item, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto& stats = pending_[{cube, item}];
  stats.hits += 1;
  stats.last_access_ms = std::max(stats.last_access_ms, now_ms);
}

std::vector<store::AccessUpdate> AccessLog::take() {
  std::map<std::pair<store::CubeId, store::ItemId>, store::AccessStats> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  std::vector<store::AccessUpdate> out;
  out.reserve(batch.size());
  for (const auto& [key, stats] : batch) {
    out.push_back({key.first, key.second, stats.hits, stats.last_access_ms});
  }
  return out;
}

}  // namespace memos::kernel
