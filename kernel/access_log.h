// access_log.h — counts reads of memory items, and the recalls among them
// that strengthen a memory (kernel/scheduler/strength.h), in memory, and
// hands them to the writer in batches, so a read never waits for (or
// causes) a commit. Thread-safe. Counts not yet flushed are lost if the
// daemon dies; they are statistics, not acknowledged writes.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "memcube/store.h"

namespace memos::kernel {

class AccessLog {
 public:
  // A read of `item`. `recall` is its weight as a recall (0: a read that
  // is no recall, such as another tenant's read of a shared cube, which
  // never moves the owner's memory), `gain` the owner's strength_gain: the
  // item's strength grows by recall * gain.
  void record(store::CubeId cube, store::ItemId item, std::int64_t now_ms, double recall = 0,
              double gain = 0);
  // Everything recorded since the last take.
  std::vector<store::AccessUpdate> take();

 private:
  std::mutex mutex_;
  std::map<std::pair<store::CubeId, store::ItemId>, store::AccessUpdate> pending_;
};

}  // namespace memos::kernel
