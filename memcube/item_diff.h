// item_diff.h — what differs between two versions of one memory item (the
// `diff` request compares any two versions of an item's history).
//
// Pure: reads only its arguments, never the store, so callers diff versions
// they already hold (ReadTxn::history) on any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "memcube/store.h"

namespace memos::store {

// One metadata key whose value differs between the two versions.
struct MetaChange {
  std::string key;
  std::optional<std::string> before;  // empty: absent in `from`
  std::optional<std::string> after;   // empty: absent in `to`
};

// What differs between two versions of one item.
struct ItemDiff {
  bool text_changed = false;
  std::vector<std::string> tags_added;    // in `to`, not in `from`, in `to`'s order
  std::vector<std::string> tags_removed;  // in `from`, not in `to`, in `from`'s order
  std::vector<MetaChange> meta_changes;   // keys added, removed or changed, sorted by key
  bool state_changed = false;
  bool validity_changed = false;  // valid_from_ms or valid_to_ms differ
};

// Pure: no store access. Never fails.
//
// Tags are compared by presence: reordering them is no change, and a tag
// listed twice on one side and absent from the other is listed twice.
// Metadata is compared by key; where a side lists a key twice its last value
// counts (as a reader of the item's metadata sees it last). A key that maps
// to equal values on both sides is no change.
ItemDiff diff_items(const Item& from, const Item& to);

}  // namespace memos::store
