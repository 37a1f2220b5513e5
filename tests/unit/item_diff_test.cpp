#define BOOST_TEST_MODULE item_diff
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "memcube/item_diff.h"

using namespace memos::store;

namespace {

Item item(std::string text, std::vector<std::string> tags = {}, std::vector<MetaEntry> meta = {}) {
  Item i;
  i.id = 7;
  i.version = 1;
  i.text = std::move(text);
  i.tags = std::move(tags);
  i.meta = std::move(meta);
  i.valid_from_ms = 100;
  return i;
}

using Tags = std::vector<std::string>;

bool empty(const ItemDiff& d) {
  return !d.text_changed && d.tags_added.empty() && d.tags_removed.empty() &&
         d.meta_changes.empty() && !d.state_changed && !d.validity_changed;
}

}  // namespace

BOOST_AUTO_TEST_CASE(identical_items_have_an_empty_diff) {
  Item a = item("same", {"x", "y"}, {{"k", "v"}, {"l", "w"}});
  BOOST_TEST(empty(diff_items(a, a)));
  // Fields the diff does not cover (version, times, provenance) are no change.
  Item b = a;
  b.version = 9;
  b.recorded_at_ms = 5000;
  b.importance = 0.5f;
  b.provenance.writer = 42;
  BOOST_TEST(empty(diff_items(a, b)));
  BOOST_TEST(empty(diff_items(Item{}, Item{})));
}

BOOST_AUTO_TEST_CASE(a_text_change_is_only_a_text_change) {
  ItemDiff d = diff_items(item("before"), item("after"));
  BOOST_TEST(d.text_changed);
  d.text_changed = false;
  BOOST_TEST(empty(d));
}

BOOST_AUTO_TEST_CASE(tags_added_and_removed_keep_their_sides_order) {
  ItemDiff d =
      diff_items(item("t", {"keep", "gone2", "gone1"}), item("t", {"new2", "keep", "new1"}));
  BOOST_TEST(d.tags_added == (Tags{"new2", "new1"}));
  BOOST_TEST(d.tags_removed == (Tags{"gone2", "gone1"}));
  BOOST_TEST(!d.text_changed);
  BOOST_TEST(d.meta_changes.empty());
}

BOOST_AUTO_TEST_CASE(reordered_tags_are_no_change) {
  BOOST_TEST(empty(diff_items(item("t", {"a", "b", "c"}), item("t", {"c", "a", "b"}))));
}

BOOST_AUTO_TEST_CASE(tags_compare_by_presence_even_when_duplicated) {
  // A tag present on both sides is no change however often it is listed.
  BOOST_TEST(empty(diff_items(item("t", {"a"}), item("t", {"a", "a"}))));
  BOOST_TEST(empty(diff_items(item("t", {"a", "b", "a"}), item("t", {"b", "a"}))));
  // A duplicated tag absent from the other side is listed as often as it appears.
  ItemDiff d = diff_items(item("t", {"x", "x"}), item("t", {"y", "y", "a"}));
  BOOST_TEST(d.tags_added == (Tags{"y", "y", "a"}));
  BOOST_TEST(d.tags_removed == (Tags{"x", "x"}));
}

BOOST_AUTO_TEST_CASE(meta_added_removed_and_changed_sorted_by_key_unchanged_left_out) {
  Item from = item("t", {}, {{"zeta", "1"}, {"same", "s"}, {"gone", "g"}, {"alpha", "old"}});
  Item to = item("t", {}, {{"alpha", "new"}, {"same", "s"}, {"beta", "b"}, {"zeta", "1"}});
  ItemDiff d = diff_items(from, to);
  BOOST_REQUIRE_EQUAL(d.meta_changes.size(), 3u);
  BOOST_TEST(d.meta_changes[0].key == "alpha");
  BOOST_TEST((d.meta_changes[0].before == std::optional<std::string>("old")));
  BOOST_TEST((d.meta_changes[0].after == std::optional<std::string>("new")));
  BOOST_TEST(d.meta_changes[1].key == "beta");  // added
  BOOST_TEST(!d.meta_changes[1].before.has_value());
  BOOST_TEST((d.meta_changes[1].after == std::optional<std::string>("b")));
  BOOST_TEST(d.meta_changes[2].key == "gone");  // removed
  BOOST_TEST((d.meta_changes[2].before == std::optional<std::string>("g")));
  BOOST_TEST(!d.meta_changes[2].after.has_value());
  BOOST_TEST(!d.text_changed);
  BOOST_TEST(d.tags_added.empty());
}

BOOST_AUTO_TEST_CASE(a_duplicated_meta_key_counts_with_its_last_value) {
  Item from = item("t", {}, {{"k", "first"}, {"k", "last"}});
  BOOST_TEST(empty(diff_items(from, item("t", {}, {{"k", "last"}}))));
  ItemDiff d = diff_items(from, item("t", {}, {{"k", "first"}}));
  BOOST_REQUIRE_EQUAL(d.meta_changes.size(), 1u);
  BOOST_TEST((d.meta_changes[0].before == std::optional<std::string>("last")));
  BOOST_TEST((d.meta_changes[0].after == std::optional<std::string>("first")));
}

BOOST_AUTO_TEST_CASE(state_and_validity_changes) {
  Item a = item("t");
  Item b = a;
  b.state = State::archived;
  ItemDiff d = diff_items(a, b);
  BOOST_TEST(d.state_changed);
  BOOST_TEST(!d.validity_changed);
  b = a;
  b.valid_to_ms = 200;  // superseded
  d = diff_items(a, b);
  BOOST_TEST(d.validity_changed);
  BOOST_TEST(!d.state_changed);
  b = a;
  b.valid_from_ms = 50;
  BOOST_TEST(diff_items(a, b).validity_changed);
  b = a;
  b.state = State::deleted;  // a tombstone keeps the text: only the state differs
  d = diff_items(a, b);
  BOOST_TEST(d.state_changed);
  d.state_changed = false;
  BOOST_TEST(empty(d));
}

BOOST_AUTO_TEST_CASE(empty_strings_are_values_like_any_other) {
  // An empty text against a non-empty one is a change; "" against "" is not.
  BOOST_TEST(diff_items(item(""), item("x")).text_changed);
  BOOST_TEST(empty(diff_items(item(""), item(""))));
  // An empty tag is a tag.
  ItemDiff d = diff_items(item("t", {"a"}), item("t", {"a", ""}));
  BOOST_TEST(d.tags_added == (Tags{""}));
  // An empty key and an empty value are present, not absent.
  d = diff_items(item("t", {}, {{"", "v"}, {"k", ""}}), item("t", {}, {{"k", "x"}}));
  BOOST_REQUIRE_EQUAL(d.meta_changes.size(), 2u);
  BOOST_TEST(d.meta_changes[0].key == "");
  BOOST_TEST((d.meta_changes[0].before == std::optional<std::string>("v")));
  BOOST_TEST(!d.meta_changes[0].after.has_value());
  BOOST_TEST((d.meta_changes[1].before == std::optional<std::string>("")));
  BOOST_TEST((d.meta_changes[1].after == std::optional<std::string>("x")));
}

BOOST_AUTO_TEST_CASE(large_items_diff_completely) {
  // 1000 tags and 1000 keys a side; every other one changes.
  Item from = item("t"), to = item("t");
  for (int i = 0; i < 1000; ++i) {
    std::string n = std::to_string(i);
    from.tags.push_back("tag" + n);
    to.tags.push_back(i % 2 ? "tag" + n : "new" + n);
    from.meta.push_back({"key" + n, "v" + n});
    to.meta.push_back({"key" + n, i % 2 ? "v" + n : "w" + n});
  }
  std::reverse(to.tags.begin(), to.tags.end());
  ItemDiff d = diff_items(from, to);
  BOOST_REQUIRE_EQUAL(d.tags_added.size(), 500u);
  BOOST_REQUIRE_EQUAL(d.tags_removed.size(), 500u);
  BOOST_TEST(d.tags_added.front() == "new998");  // `to`'s order (reversed)
  BOOST_TEST(d.tags_removed.front() == "tag0");  // `from`'s order
  BOOST_REQUIRE_EQUAL(d.meta_changes.size(), 500u);
  BOOST_TEST(
      std::is_sorted(d.meta_changes.begin(), d.meta_changes.end(),
                     [](const MetaChange& a, const MetaChange& b) { return a.key < b.key; }));
  for (const MetaChange& c : d.meta_changes) {
    BOOST_TEST((c.before && c.after && *c.before != *c.after));
  }
}

// Property test: random pairs of items against a plain model of the diff
// (quadratic, written from the definitions in item_diff.h).
BOOST_AUTO_TEST_CASE(random_pairs_match_a_model) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    // Small alphabets, so that sides share, repeat and reorder values.
    auto word = [&] { return std::string(1, static_cast<char>('a' + rng() % 5)); };
    auto random_item = [&] {
      Item i = item(rng() % 2 ? "x" : "y");
      for (std::size_t n = rng() % 6; n > 0; --n) i.tags.push_back(word());
      for (std::size_t n = rng() % 6; n > 0; --n) i.meta.push_back({word(), word()});
      i.state = static_cast<State>(rng() % 4);
      i.valid_from_ms = static_cast<std::int64_t>(rng() % 2);
      i.valid_to_ms = static_cast<std::int64_t>(rng() % 2);
      return i;
    };
    Item a = random_item(), b = random_item();
    ItemDiff d = diff_items(a, b);

    auto missing = [](const Tags& x, const Tags& y) {
      Tags out;
      for (const auto& t : x) {
        if (std::find(y.begin(), y.end(), t) == y.end()) out.push_back(t);
      }
      return out;
    };
    auto last_value = [](const Item& i, const std::string& key) -> std::optional<std::string> {
      std::optional<std::string> v;
      for (const auto& m : i.meta) {
        if (m.key == key) v = m.value;
      }
      return v;
    };
    std::map<std::string, std::pair<std::optional<std::string>, std::optional<std::string>>> meta;
    for (const auto& m : a.meta) meta[m.key] = {};
    for (const auto& m : b.meta) meta[m.key] = {};
    for (auto& [key, sides] : meta) sides = {last_value(a, key), last_value(b, key)};
    std::erase_if(meta, [](const auto& kv) { return kv.second.first == kv.second.second; });

    BOOST_TEST(d.text_changed == (a.text != b.text), "seed " << seed);
    BOOST_TEST(d.tags_added == missing(b.tags, a.tags), "seed " << seed);
    BOOST_TEST(d.tags_removed == missing(a.tags, b.tags), "seed " << seed);
    BOOST_REQUIRE_EQUAL(d.meta_changes.size(), meta.size());
    std::size_t i = 0;
    for (const auto& [key, sides] : meta) {
      BOOST_TEST(d.meta_changes[i].key == key, "seed " << seed);
      BOOST_TEST((d.meta_changes[i].before == sides.first), "seed " << seed);
      BOOST_TEST((d.meta_changes[i].after == sides.second), "seed " << seed);
      ++i;
    }
    BOOST_TEST(d.state_changed == (a.state != b.state), "seed " << seed);
    BOOST_TEST(d.validity_changed ==
                   (a.valid_from_ms != b.valid_from_ms || a.valid_to_ms != b.valid_to_ms),
               "seed " << seed);
  }
}
