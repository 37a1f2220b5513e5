#define BOOST_TEST_MODULE cube_index
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>

#include "kernel/cube_index.h"

using memos::kernel::CubeIndex;
using memos::kernel::IndexedAttributes;
using memos::kernel::SearchFilter;

namespace {

std::vector<float> random_unit(std::mt19937_64& rng, std::size_t dim) {
  std::normal_distribution<float> n;
  std::vector<float> v(dim);
  float norm = 0;
  for (auto& x : v) {
    x = n(rng);
    norm += x * x;
  }
  for (auto& x : v) x /= std::sqrt(norm);
  return v;
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The reference: what a filter admits, written independently of CubeIndex.
bool expected_admit(const IndexedAttributes& a, const SearchFilter& f) {
  for (const auto& t : f.all_tags) {
    if (std::find(a.tags.begin(), a.tags.end(), t) == a.tags.end()) return false;
  }
  if (a.archived && !f.include_archived) return false;
  if (a.expires_at_ms != 0 && a.expires_at_ms <= f.now_ms) return false;
  return a.valid_from_ms <= f.as_of_ms && (a.valid_to_ms == 0 || f.as_of_ms < a.valid_to_ms);
}

IndexedAttributes attributes(std::vector<std::string> tags) {
  IndexedAttributes a;
  a.tags = std::move(tags);
  return a;
}

SearchFilter plain(std::vector<std::string> tags = {}) {
  SearchFilter f;
  f.all_tags = std::move(tags);
  f.now_ms = f.as_of_ms = 1000;
  return f;
}

}  // namespace

// Search under every kind of filter, after updates and deletes, must equal a
// brute-force scan of what should be there.
// Run twice: FAISS's own loop, then the BLAS path memosd uses (which must
// honour the selectors just the same).
BOOST_DATA_TEST_CASE(matches_brute_force_with_filters_updates_and_deletes,
                     boost::unit_test::data::make({false, true}), blas) {
  if (blas) memos::kernel::use_blas_for_single_queries();
  constexpr std::size_t dim = 32;
  std::mt19937_64 rng(7);
  CubeIndex index(dim);
  std::map<std::uint64_t, std::pair<std::vector<float>, IndexedAttributes>> truth;
  const std::vector<std::string> tag_pool = {"red", "green", "blue", "home"};
  for (int step = 0; step < 3000; ++step) {
    std::uint64_t id = 1 + rng() % 600;
    if (rng() % 5 == 0) {
      index.remove(id);
      truth.erase(id);
      continue;
    }
    IndexedAttributes a;
    for (const auto& t : tag_pool) {
      if (rng() % 3 == 0) a.tags.push_back(t);
    }
    a.archived = rng() % 10 == 0;
    a.valid_from_ms = static_cast<std::int64_t>(rng() % 100);
    a.valid_to_ms =
        rng() % 4 == 0 ? a.valid_from_ms + 1 + static_cast<std::int64_t>(rng() % 100) : 0;
    a.expires_at_ms = rng() % 8 == 0 ? static_cast<std::int64_t>(50 + rng() % 100) : 0;
    auto v = random_unit(rng, dim);
    if (rng() % 7 == 0 && truth.contains(id)) {
      index.set_attributes(id, a);  // attributes change, the vector stays
      truth[id].second = a;
    } else {
      index.upsert(id, v, a);
      truth[id] = {v, a};
    }
  }
  BOOST_TEST(index.size() == truth.size());

  for (int q = 0; q < 200; ++q) {
    auto query = random_unit(rng, dim);
    SearchFilter filter;
    if (q % 3 == 1) filter.all_tags = {"red"};
    if (q % 3 == 2) filter.all_tags = {"green", "home"};
    filter.now_ms = static_cast<std::int64_t>(rng() % 200);
    filter.as_of_ms = static_cast<std::int64_t>(rng() % 200);
    filter.explicit_as_of = q % 2 == 0;
    filter.include_archived = q % 4 == 0;
    std::vector<std::pair<float, std::uint64_t>> expected;
    for (const auto& [id, entry] : truth) {
      if (expected_admit(entry.second, filter)) expected.emplace_back(dot(query, entry.first), id);
    }
    std::sort(expected.rbegin(), expected.rend());
    auto hits = index.search(query, 10, filter);
    BOOST_REQUIRE_EQUAL(hits.size(), std::min<std::size_t>(10, expected.size()));
    for (std::size_t i = 0; i < hits.size(); ++i) {
      BOOST_TEST(hits[i].score == expected[i].first, boost::test_tools::tolerance(1e-4f));
      BOOST_TEST(expected_admit(truth.at(hits[i].id).second, filter));
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_index_unknown_tag_and_k_zero) {
  CubeIndex index(8);
  std::vector<float> q(8, 0.5f);
  BOOST_TEST(index.search(q, 5, plain()).empty());
  index.upsert(1, q, attributes({"a"}));
  BOOST_TEST(index.search(q, 0, plain()).empty());
  BOOST_TEST(index.search(q, 5, plain({"missing"})).empty());
  BOOST_TEST(index.search(q, 5, plain({"a"})).size() == 1u);
  index.upsert(1, q, attributes({"b"}));  // attributes are replaced on update
  BOOST_TEST(index.search(q, 5, plain({"a"})).empty());
  BOOST_TEST(index.search(q, 5, plain({"b"})).size() == 1u);
  index.remove(1);
  index.remove(1);  // twice is harmless
  BOOST_TEST(index.size() == 0u);
  BOOST_TEST(index.search(q, 5, plain({"b"})).empty());
  index.set_attributes(1, attributes({}));  // not indexed: no effect
  BOOST_TEST(index.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_plain_search_still_hides_restricted_items) {
  // The fast path without a selector must not leak archived, expired or
  // closed facts once any exist.
  CubeIndex index(4);
  std::vector<float> q = {1, 0, 0, 0};
  index.upsert(1, q, attributes({}));
  IndexedAttributes archived = attributes({});
  archived.archived = true;
  index.upsert(2, q, archived);
  IndexedAttributes closed = attributes({});
  closed.valid_to_ms = 500;
  index.upsert(3, q, closed);
  auto hits = index.search(q, 10, plain());
  BOOST_REQUIRE_EQUAL(hits.size(), 1u);
  BOOST_TEST(hits[0].id == 1u);
  index.remove(2);
  index.remove(3);
  BOOST_TEST(index.search(q, 10, plain()).size() == 1u);
}
