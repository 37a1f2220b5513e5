// The placement policy of shard_balance.h on rosters written out: who may
// claim a free shard and who hands one over, so that owners spread and
// never flap.
#define BOOST_TEST_MODULE shard_balance
#include "cluster/shard_balance.h"

#include <boost/test/unit_test.hpp>

using memos::cluster::may_claim_free_shard;
using memos::cluster::shard_to_hand_over;
using memos::cluster::shards_owned;

BOOST_AUTO_TEST_CASE(counts_cover_every_node_on_the_roster_and_every_owner) {
  const auto counts = shards_owned({"a", "a", "", "c"}, {"a", "b"});
  BOOST_TEST(counts.at("a") == 2u);
  BOOST_TEST(counts.at("b") == 0u);
  BOOST_TEST(counts.at("c") == 1u);  // owns a shard, off the roster (its key lapsed)
  BOOST_TEST(counts.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_free_shard_goes_to_a_least_loaded_node) {
  // No roster read yet: claim, as a single node always did.
  BOOST_TEST(may_claim_free_shard("a", {"", "", "", ""}, {}));
  // Alone on the roster: everything.
  BOOST_TEST(may_claim_free_shard("a", {"a", "a", "a", ""}, {"a"}));
  // b owns none: a, with two, leaves the free shard to it.
  BOOST_TEST(!may_claim_free_shard("a", {"a", "a", "", ""}, {"a", "b"}));
  BOOST_TEST(may_claim_free_shard("b", {"a", "a", "", ""}, {"a", "b"}));
  // Level: either may.
  BOOST_TEST(may_claim_free_shard("a", {"a", "b", "", ""}, {"a", "b"}));
  BOOST_TEST(may_claim_free_shard("b", {"a", "b", "", ""}, {"a", "b"}));
  // A node not on the roster yet (just started) owning nothing may.
  BOOST_TEST(may_claim_free_shard("c", {"a", "b", "", ""}, {"a", "b"}));
}

BOOST_AUTO_TEST_CASE(a_node_hands_over_only_when_two_ahead_and_then_its_highest) {
  // Alone: nothing to hand to.
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "a", "a"}, {"a"}));
  // b joined with none: a hands over its highest.
  BOOST_TEST(*shard_to_hand_over("a", {"a", "a", "a", "a"}, {"a", "b"}) == 3u);
  BOOST_TEST(*shard_to_hand_over("a", {"a", "a", "a", "b"}, {"a", "b"}) == 2u);
  // Two against one, or level: no flapping.
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "b", ""}, {"a", "b"}));
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "b", "b"}, {"a", "b"}));
  // Three nodes over four shards: 2, 1, 1 is as even as it gets.
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "b", "c"}, {"a", "b", "c"}));
  BOOST_TEST(*shard_to_hand_over("a", {"a", "a", "a", "b"}, {"a", "b", "c"}) == 2u);
  // A node that owns nothing never hands over.
  BOOST_TEST(!shard_to_hand_over("c", {"a", "a", "a", "a"}, {"a", "b", "c"}));
}
