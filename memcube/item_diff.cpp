#include "memcube/item_diff.h"

#include <map>
#include <string_view>
#include <unordered_set>

namespace memos::store {
namespace {

// The tags of `tags` that `other` lacks, in `tags`' order. A set, so that an
// item with thousands of tags diffs in linear time.
std::vector<std::string> missing_from(const std::vector<std::string>& tags,
                                      const std::vector<std::string>& other) {
  std::unordered_set<std::string_view> present(other.begin(), other.end());
  std::vector<std::string> out;
  for (const std::string& tag : tags) {
    if (!present.contains(tag)) out.push_back(tag);
  }
  return out;
}

}  // namespace

ItemDiff diff_items(const Item& from, const Item& to) {
  ItemDiff diff;
  diff.text_changed = from.text != to.text;
  diff.tags_added = missing_from(to.tags, from.tags);
  diff.tags_removed = missing_from(from.tags, to.tags);

  // Key -> (value in `from`, value in `to`); a later duplicate key wins.
  std::map<std::string_view, std::pair<const std::string*, const std::string*>> values;
  for (const MetaEntry& m : from.meta) values[m.key].first = &m.value;
  for (const MetaEntry& m : to.meta) values[m.key].second = &m.value;
  for (const auto& [key, sides] : values) {
    const auto& [before, after] = sides;
    if (before && after && *before == *after) continue;
    MetaChange change;
    change.key = std::string(key);
    if (before) change.before = *before;
    if (after) change.after = *after;
    diff.meta_changes.push_back(std::move(change));
  }

  diff.state_changed = from.state != to.state;
  diff.validity_changed =
      from.valid_from_ms != to.valid_from_ms || from.valid_to_ms != to.valid_to_ms;
  return diff;
}

}  // namespace memos::store
