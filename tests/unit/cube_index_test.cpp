#define BOOST_TEST_MODULE cube_index
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "kernel/cube_index.h"

using memos::kernel::CubeIndex;

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

}  // namespace

// Search (with and without tag filters, after updates and deletes) must equal
// a brute-force scan of what should be there.
BOOST_AUTO_TEST_CASE(matches_brute_force_with_filters_updates_and_deletes) {
  constexpr std::size_t dim = 32;
  std::mt19937_64 rng(7);
  CubeIndex index(dim);
  std::map<std::uint64_t, std::pair<std::vector<float>, std::vector<std::string>>> truth;
  const std::vector<std::string> tag_pool = {"red", "green", "blue", "home"};
  for (int step = 0; step < 3000; ++step) {
    std::uint64_t id = 1 + rng() % 600;
    if (rng() % 5 == 0) {
      index.remove(id);
      truth.erase(id);
      continue;
    }
    std::vector<std::string> tags;
    for (const auto& t : tag_pool) {
      if (rng() % 3 == 0) tags.push_back(t);
    }
    auto v = random_unit(rng, dim);
    index.upsert(id, v, tags);
    truth[id] = {v, tags};
  }
  BOOST_TEST(index.size() == truth.size());

  for (int q = 0; q < 50; ++q) {
    auto query = random_unit(rng, dim);
    std::vector<std::string> filter;
    if (q % 3 == 1) filter = {"red"};
    if (q % 3 == 2) filter = {"green", "home"};
    std::vector<std::pair<float, std::uint64_t>> expected;
    for (const auto& [id, entry] : truth) {
      bool all = std::all_of(filter.begin(), filter.end(), [&](const std::string& t) {
        return std::find(entry.second.begin(), entry.second.end(), t) != entry.second.end();
      });
      if (all) expected.emplace_back(dot(query, entry.first), id);
    }
    std::sort(expected.rbegin(), expected.rend());
    auto hits = index.search(query, 10, filter);
    BOOST_REQUIRE_EQUAL(hits.size(), std::min<std::size_t>(10, expected.size()));
    for (std::size_t i = 0; i < hits.size(); ++i) {
      BOOST_TEST(hits[i].score == expected[i].first, boost::test_tools::tolerance(1e-4f));
      BOOST_TEST(truth.contains(hits[i].id));
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_index_unknown_tag_and_k_zero) {
  CubeIndex index(8);
  std::vector<float> q(8, 0.5f);
  BOOST_TEST(index.search(q, 5, {}).empty());
  index.upsert(1, q, {"a"});
  BOOST_TEST(index.search(q, 0, {}).empty());
  BOOST_TEST(index.search(q, 5, {"missing"}).empty());
  BOOST_TEST(index.search(q, 5, {"a"}).size() == 1u);
  index.upsert(1, q, {"b"});  // tags are replaced on update
  BOOST_TEST(index.search(q, 5, {"a"}).empty());
  BOOST_TEST(index.search(q, 5, {"b"}).size() == 1u);
  index.remove(1);
  index.remove(1);  // twice is harmless
  BOOST_TEST(index.size() == 0u);
  BOOST_TEST(index.search(q, 5, {"b"}).empty());
}
