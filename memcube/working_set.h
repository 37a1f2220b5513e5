// working_set.h — what the store keeps for the scheduler (memos(7),
// "Scheduling"): each cube's working set, the memories a chat over the
// cube puts first in its context, in a stable order so that a stored KV
// state of their block keeps serving chats while the set changes a little.
#pragma once

#include <cstdint>
#include <vector>

#include "memcube/ids.h"

namespace memos::store {

struct WorkingSet {
  CubeId cube = 0;
  TenantId tenant = 0;           // the cube's owner
  std::uint64_t generation = 0;  // +1 each time its members change
  // Members in the order they joined: those that stay keep their place,
  // newcomers go at the end.
  std::vector<ItemId> items;
  std::uint32_t estimated_tokens = 0;  // of the members' texts, as selected
  // The activation item holding the state of the members' block, once
  // prefilled (0: none yet), and how many tokens that block has.
  ItemId state = 0;
  std::uint32_t block_tokens = 0;
  std::int64_t updated_at_ms = 0;
  bool operator==(const WorkingSet&) const = default;
};

// At most this many members (a working set is a few hundred tokens to a
// few thousand; the bound keeps a row small whatever the settings).
inline constexpr std::size_t kMaxWorkingSetItems = 4096;

}  // namespace memos::store
