// decision_log.h — what the scheduler decided and why (memctl sched log):
// the last `capacity` decisions of every tenant, in memory. Each one is
// also written to memosd's log (the journal keeps older ones). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "memcube/ids.h"

namespace memos::kernel::scheduler {

enum class Action {
  promoted,  // a memory joined a working set, or a set's state was prefilled
  demoted,   // a memory left a working set
  evicted,   // an activation state was evicted for room
  archived,  // a memory's retention stayed low: archived
  restored,  // an archived memory was read: active again
};
inline constexpr std::size_t kActions = 5;
const char* to_string(Action action);

struct Decision {
  std::int64_t at_ms = 0;
  store::TenantId tenant = 0;  // whose memory it moved
  store::CubeId cube = 0;
  std::string cube_name;
  std::uint64_t item = 0;  // a memory, or an activation item (evicted, promoted state)
  Action action = Action::promoted;
  std::string reason;
};

class DecisionLog {
 public:
  explicit DecisionLog(std::size_t capacity) : capacity_(capacity) {}

  // Keeps `d` (dropping the oldest past the capacity) and logs it.
  void add(Decision d);
  // The tenant's last `max` decisions (of `cube` only, when not 0), oldest
  // first.
  std::vector<Decision> list(store::TenantId tenant, store::CubeId cube, std::size_t max) const;
  // Decisions of each action since memosd started (memctl metrics), by
  // Action, whatever the capacity kept.
  std::array<std::uint64_t, kActions> counts() const;

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Decision> entries_;
  std::array<std::uint64_t, kActions> counts_{};
};

}  // namespace memos::kernel::scheduler
