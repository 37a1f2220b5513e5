// item_diff.h — placeholder copy for the kernel branch; replaced by the store branch's.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "memcube/store.h"

namespace memos::store {
struct MetaChange {
  std::string key;
  std::optional<std::string> before;
  std::optional<std::string> after;
};
struct ItemDiff {
  bool text_changed = false;
  std::vector<std::string> tags_added;
  std::vector<std::string> tags_removed;
  std::vector<MetaChange> meta_changes;
  bool state_changed = false;
  bool validity_changed = false;
};
ItemDiff diff_items(const Item& from, const Item& to);
}  // namespace memos::store
