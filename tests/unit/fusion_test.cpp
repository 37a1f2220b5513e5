// The hybrid ranking: reciprocal rank fusion, weights, boosts and MMR.
#define BOOST_TEST_MODULE fusion
#include <boost/test/unit_test.hpp>

#include "plugins/hybrid-fuser/fusion.h"

using memos::fusion::Candidate;
using memos::fusion::fuse;
using memos::fusion::Options;
using memos::fusion::RankedList;

namespace {

std::vector<std::uint64_t> ids(const std::vector<memos::fusion::Ranked>& r) {
  std::vector<std::uint64_t> out;
  for (const auto& x : r) out.push_back(x.id);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_item_high_in_both_lists_wins_and_scores_are_normalised) {
  RankedList dense{1, {{1, 0.9f}, {2, 0.8f}, {3, 0.7f}}};
  RankedList lexical{1, {{2, 12.f}, {4, 9.f}, {1, 3.f}}};
  Options o;
  o.k = 10;
  auto r = fuse({dense, lexical}, {}, o);
  BOOST_TEST((ids(r) == std::vector<std::uint64_t>{2, 1, 4, 3}));
  BOOST_TEST(r.size() == 4u);
  // First in both lists would score exactly 1.
  auto top = fuse({RankedList{1, {{7, 1}}}, RankedList{1, {{7, 1}}}}, {}, o);
  BOOST_TEST(top.front().score == 1.0f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(weights_decide_between_lists_and_k_bounds_the_result) {
  RankedList dense{0.25f, {{1, 0}, {2, 0}}};
  RankedList lexical{1, {{3, 0}, {4, 0}}};
  Options o;
  o.k = 2;
  o.rrf_k = 10;
  auto r = fuse({dense, lexical}, {}, o);
  BOOST_TEST((ids(r) == std::vector<std::uint64_t>{3, 4}));
  dense.weight = 4;
  BOOST_TEST((ids(fuse({dense, lexical}, {}, o)) == std::vector<std::uint64_t>{1, 2}));
  BOOST_TEST(fuse({}, {}, o).empty());
}

BOOST_AUTO_TEST_CASE(recency_and_importance_lift_items) {
  constexpr std::int64_t kHundredDays = 100LL * 86'400'000;
  RankedList one{1, {{1, 0}, {2, 0}}};
  std::vector<std::pair<std::uint64_t, Candidate>> c{{1, {0, 0.0f, {}, 0}},
                                                     {2, {kHundredDays, 1.0f, {}, 0}}};
  Options o;
  o.k = 2;
  o.now_ms = kHundredDays;  // item 1 is 100 days old (half life 30 days)
  BOOST_TEST((ids(fuse({one}, c, o)) == std::vector<std::uint64_t>{1, 2}));
  o.recency_weight = 1;  // item 2 is new, item 1 is old
  BOOST_TEST((ids(fuse({one}, c, o)) == std::vector<std::uint64_t>{2, 1}));
  o.recency_weight = 0;
  o.importance_weight = 1;
  BOOST_TEST((ids(fuse({one}, c, o)) == std::vector<std::uint64_t>{2, 1}));
}

BOOST_AUTO_TEST_CASE(retention_lifts_memories_in_use_by_its_weight) {
  // Item 2 ranks second but is remembered (R 0.9); item 1 is nearly
  // forgotten (R 0.1). Two lists of three: 1 is first in both (fused 1), 2
  // second in both (fused (1/62) / (1/61) = 0.984).
  RankedList list{1, {{1, 0}, {2, 0}, {3, 0}}};
  std::vector<std::pair<std::uint64_t, Candidate>> c{{1, {0, 0, {}, 0.1f}}, {2, {0, 0, {}, 0.9f}}};
  Options o;
  o.k = 3;
  BOOST_TEST((ids(fuse({list, list}, c, o)) == std::vector<std::uint64_t>{1, 2, 3}));
  o.retention_weight = 0.3f;  // 2: 0.984 + 0.27 beats 1: 1 + 0.03
  auto top = fuse({list, list}, c, o);
  BOOST_TEST((ids(top) == std::vector<std::uint64_t>{2, 1, 3}));
  BOOST_TEST(top[0].score == 61.0 / 62.0 + 0.3 * 0.9, boost::test_tools::tolerance(1e-5));
  BOOST_TEST(top[1].score == 1.0 + 0.3 * 0.1, boost::test_tools::tolerance(1e-5));
  // 3 has no attributes: retention 0, no lift.
  BOOST_TEST(top[2].score == 61.0 / 63.0, boost::test_tools::tolerance(1e-5));
  o.retention_weight = 0.01f;  // too small to pass relevance
  BOOST_TEST((ids(fuse({list, list}, c, o)) == std::vector<std::uint64_t>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(mmr_skips_near_duplicates) {
  // 1 and 2 say the same thing; 3 is different but ranked last.
  RankedList one{1, {{1, 0}, {2, 0}, {3, 0}}};
  std::vector<std::pair<std::uint64_t, Candidate>> c{
      {1, {0, 0, {1, 0}, 0}}, {2, {0, 0, {1, 0}, 0}}, {3, {0, 0, {0, 1}, 0}}};
  Options o;
  o.k = 2;
  BOOST_TEST((ids(fuse({one}, c, o)) == std::vector<std::uint64_t>{1, 2}));
  o.mmr_lambda = 0.5f;
  BOOST_TEST((ids(fuse({one}, c, o)) == std::vector<std::uint64_t>{1, 3}));
}
