#include "memcube/item_diff.h"

#include <algorithm>
#include <map>

namespace memos::store {

ItemDiff diff_items(const Item& a, const Item& b) {
  ItemDiff d;
  d.text_changed = a.text != b.text;
  auto missing_from = [](const std::vector<std::string>& x, const std::vector<std::string>& y) {
    std::vector<std::string> out;
    for (const auto& t : x) {
      if (std::find(y.begin(), y.end(), t) == y.end()) out.push_back(t);
    }
    return out;
  };
  d.tags_added = missing_from(b.tags, a.tags);
  d.tags_removed = missing_from(a.tags, b.tags);
  std::map<std::string, std::pair<const std::string*, const std::string*>> keys;
  for (const auto& m : a.meta) keys[m.key].first = &m.value;
  for (const auto& m : b.meta) keys[m.key].second = &m.value;
  for (const auto& [key, values] : keys) {
    if (values.first && values.second && *values.first == *values.second) continue;
    MetaChange c{key, {}, {}};
    if (values.first) c.before = *values.first;
    if (values.second) c.after = *values.second;
    d.meta_changes.push_back(std::move(c));
  }
  d.state_changed = a.state != b.state;
  d.validity_changed = a.valid_from_ms != b.valid_from_ms || a.valid_to_ms != b.valid_to_ms;
  return d;
}

}  // namespace memos::store
