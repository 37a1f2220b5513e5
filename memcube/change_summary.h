// change_summary.h — what a replicated change set did to cubes and their
// items, in the words the kernel's indexes need: a follower applies a log
// record row for row (WriteTxn::apply_changes), then tells its indexes which
// cubes came or went and which item heads were written or purged, as the
// owner's handlers told its own.
//
// Errors (Status): corrupt — an item or cube row in the set does not decode
// (apply_changes would have refused it first; a summary of an unapplied set
// says so here).
#pragma once

#include <vector>

#include "memcube/change_set.h"
#include "memcube/store_types.h"

namespace memos::store {

// One cube's part of a change set, in the order the set changed it.
struct CubeChange {
  CubeId cube = 0;
  bool written = false;        // its cube row was put (created, renamed, a new head version)
  bool removed = false;        // its cube row was erased (the cube is gone)
  std::vector<Item> heads;     // item heads put, tombstones included
  std::vector<ItemId> purged;  // item heads erased (retention's purge)
};

// The cubes `changes` touched through the `cubes` and `items` tables, in the
// order each first appears. A cube erased and then written again in one set
// (never done today) ends `written` with `removed` set: drop, then reopen.
// An `erase_prefix` of a cube's items goes with the erasure of its row, so
// it adds nothing of its own.
Status summarize_changes(const ChangeSet& changes, std::vector<CubeChange>* out);

}  // namespace memos::store
