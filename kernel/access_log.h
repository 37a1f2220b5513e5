// access_log.h — counts reads of memory items in memory and hands them to
// the writer in batches, so a read never waits for (or causes) a commit.
// Thread-safe. Counts not yet flushed are lost if the daemon dies; they are
// statistics, not acknowledged writes.
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
  void record(store::CubeId cube, store::ItemId item, std::int64_t now_ms);
  // Everything recorded since the last take.
  std::vector<store::AccessUpdate> take();

 private:
  std::mutex mutex_;
  std::map<std::pair<store::CubeId, store::ItemId>, store::AccessStats> pending_;
};

}  // namespace memos::kernel
