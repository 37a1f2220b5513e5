// The llama executor's resident set (plugins/llama-executor/resident_cache.h):
// within its byte budget it drops the least useful state first (the utility
// memosd sends with each state), the least recently used among equals, and
// keeps a newcomer out rather than drop a state worth more.
#define BOOST_TEST_MODULE resident_cache
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include "plugins/llama-executor/resident_cache.h"

using memos::llama_exec::Blob;
using memos::llama_exec::ResidentCache;

namespace {

// Ordinary memory: the cache only counts sizes (and says which are pinned).
memos::llama_exec::StagingPool pool(false, 0);

Blob blob(std::size_t bytes) {
  return pool.copy_of(std::string(bytes, 'x'));
}

bool has(ResidentCache& cache, const std::string& digest) {
  return cache.find(digest, 0) != nullptr;
}

}  // namespace

BOOST_AUTO_TEST_CASE(equal_utilities_evict_least_recently_used) {
  ResidentCache cache(300);
  cache.insert("a", blob(100));
  cache.insert("b", blob(100));
  cache.insert("c", blob(100));
  BOOST_REQUIRE(cache.find("a") != nullptr);  // b is now the least recent
  cache.insert("d", blob(100));
  BOOST_TEST(cache.stats().states == 3u);
  BOOST_TEST(cache.stats().bytes == 300u);
  BOOST_TEST(!has(cache, "b"));
  BOOST_TEST(has(cache, "a"));
  BOOST_TEST(has(cache, "c"));
  BOOST_TEST(has(cache, "d"));
}

BOOST_AUTO_TEST_CASE(the_least_useful_goes_first_whatever_its_recency) {
  ResidentCache cache(300);
  cache.insert("useful", blob(100), 5.0);
  cache.insert("idle", blob(100), 0.5);
  cache.insert("middling", blob(100), 2.0);
  // "useful" is the least recent, but worth the most: "idle" goes.
  cache.insert("new", blob(100), 1.0);
  BOOST_TEST(cache.find("useful", 5.0) != nullptr);
  BOOST_TEST(cache.find("middling", 2.0) != nullptr);
  BOOST_TEST(cache.find("new", 1.0) != nullptr);
  BOOST_TEST(cache.find("idle", 0.5) == nullptr);
  // Room for a large state: the two least useful go ("new" then
  // "middling"), "useful" stays.
  cache.insert("large", blob(200), 3.0);
  BOOST_TEST(cache.stats().bytes == 300u);
  BOOST_TEST(cache.find("useful", 5.0) != nullptr);
  BOOST_TEST(cache.find("large", 3.0) != nullptr);
  BOOST_TEST(cache.find("middling", 2.0) == nullptr);
  BOOST_TEST(cache.find("new", 1.0) == nullptr);
}

BOOST_AUTO_TEST_CASE(a_hit_updates_a_states_utility) {
  ResidentCache cache(200);
  cache.insert("a", blob(100), 1.0);
  cache.insert("b", blob(100), 2.0);
  BOOST_REQUIRE(cache.find("b", 0.1) != nullptr);  // b's worth fell since
  cache.insert("c", blob(100), 1.5);
  BOOST_TEST(cache.find("a", 1.0) != nullptr);
  BOOST_TEST(cache.find("b", 0.1) == nullptr);
}

BOOST_AUTO_TEST_CASE(a_newcomer_never_evicts_a_state_worth_more) {
  ResidentCache cache(200);
  cache.insert("a", blob(100), 4.0);
  cache.insert("b", blob(100), 3.0);
  cache.insert("poor", blob(100), 1.0);  // would have to drop b or a: stays out
  BOOST_TEST(cache.stats().states == 2u);
  BOOST_TEST(cache.find("poor", 1.0) == nullptr);
  // Nothing was dropped for it either.
  BOOST_TEST(cache.find("a", 4.0) != nullptr);
  BOOST_TEST(cache.find("b", 3.0) != nullptr);
  // One larger than the budget is never kept, and evicts nothing.
  cache.insert("huge", blob(201), 100.0);
  BOOST_TEST(cache.stats().states == 2u);
  BOOST_TEST(cache.stats().bytes == 200u);
}

BOOST_AUTO_TEST_CASE(reinserting_replaces_and_counts_bytes_once) {
  ResidentCache cache(250);
  cache.insert("a", blob(100), 1.0);
  cache.insert("a", blob(120), 1.0);
  BOOST_TEST(cache.stats().states == 1u);
  BOOST_TEST(cache.stats().bytes == 120u);
  cache.erase("a");
  cache.erase("a");  // twice: nothing
  BOOST_TEST(cache.stats().bytes == 0u);
  ResidentCache none(0);  // resident_mb = 0: keeps nothing
  none.insert("a", blob(1), 1.0);
  BOOST_TEST(none.stats().states == 0u);
}
