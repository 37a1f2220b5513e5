// The placement policy of shard_balance.h on rosters written out: who hands
// a shard over, and to whom, so that owners spread and never flap.
#define BOOST_TEST_MODULE shard_balance
#include "cluster/shard_balance.h"

#include <boost/test/unit_test.hpp>

using memos::cluster::shard_to_hand_over;
using memos::cluster::shards_owned;

BOOST_AUTO_TEST_CASE(counts_cover_every_node_on_the_roster_and_every_owner) {
  const auto counts = shards_owned({"a", "a", "", "c"}, {"a", "b"});
  BOOST_TEST(counts.at("a") == 2u);
  BOOST_TEST(counts.at("b") == 0u);
  BOOST_TEST(counts.at("c") == 1u);  // owns a shard, off the roster (its key lapsed)
  BOOST_TEST(counts.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_node_hands_its_highest_shard_to_the_least_loaded_when_two_ahead) {
  // Alone, or no roster read: nothing to hand to.
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "a", "a"}, {"a"}));
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "a", "a"}, {}));
  // b joined with none: a hands over its highest, to b.
  auto h = shard_to_hand_over("a", {"a", "a", "a", "a"}, {"a", "b"});
  BOOST_REQUIRE(h);
  BOOST_TEST(h->shard == 3u);
  BOOST_TEST(h->successor == "b");
  h = shard_to_hand_over("a", {"a", "a", "a", "b"}, {"a", "b"});
  BOOST_REQUIRE(h);
  BOOST_TEST(h->shard == 2u);
  // Two against one, or level: no flapping.
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "b", ""}, {"a", "b"}));
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "b", "b"}, {"a", "b"}));
  // Three nodes over four shards: 2, 1, 1 is as even as it gets.
  BOOST_TEST(!shard_to_hand_over("a", {"a", "a", "b", "c"}, {"a", "b", "c"}));
  // 3, 1, 0: to c, the least loaded, not b.
  h = shard_to_hand_over("a", {"a", "a", "a", "b"}, {"a", "b", "c"});
  BOOST_REQUIRE(h);
  BOOST_TEST(h->shard == 2u);
  BOOST_TEST(h->successor == "c");
  // Equals: the first in roster order.
  h = shard_to_hand_over("c", {"c", "c", "c", "c"}, {"a", "b", "c"});
  BOOST_REQUIRE(h);
  BOOST_TEST(h->successor == "a");
  // A node that owns nothing never hands over.
  BOOST_TEST(!shard_to_hand_over("c", {"a", "a", "a", "a"}, {"a", "b", "c"}));
}
