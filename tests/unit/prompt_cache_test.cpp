// The executor's cache of recent prompts' states (plugins/llama-executor/
// prompt_cache.h): the longest prefix of the same scope is found and no
// other scope's, the least recently used goes first within the byte
// budget, and what does not fit is not kept.
#define BOOST_TEST_MODULE prompt_cache
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

#include "plugins/llama-executor/prompt_cache.h"

using memos::llama_exec::PromptCache;

namespace {

PromptCache::Bytes bytes(std::size_t n, char c = 's') {
  return std::make_shared<const std::string>(n, c);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_longest_prefix_of_the_same_scope_is_found) {
  PromptCache cache(1000);
  cache.insert("uid 1", {1, 2, 3, 4}, bytes(10, 'a'));
  cache.insert("uid 1", {1, 2, 9}, bytes(10, 'b'));
  cache.insert("uid 2", {1, 2, 3, 4, 5}, bytes(10, 'c'));
  auto m = cache.longest("uid 1", {1, 2, 3, 4, 5});
  BOOST_TEST(m.shared == 4u);
  BOOST_TEST((m.tokens == PromptCache::Tokens{1, 2, 3, 4}));
  BOOST_TEST(m.state->front() == 'a');
  // Another scope's longer prefix is never a match; nor is an empty scope.
  BOOST_TEST(cache.longest("uid 3", {1, 2, 3, 4, 5}).shared == 0u);
  BOOST_TEST(!cache.longest("uid 3", {1, 2, 3, 4, 5}).state);
  BOOST_TEST(cache.longest("", {1, 2, 3}).shared == 0u);
  // Equal prefixes: the more recently used wins.
  BOOST_TEST(cache.longest("uid 1", {1, 2, 9}).state->front() == 'b');
  BOOST_TEST(cache.longest("uid 1", {1, 2}).state->front() == 'b');
  BOOST_TEST(cache.longest("uid 1", {7}).shared == 0u);
  // An empty scope is never kept.
  cache.insert("", {5}, bytes(10));
  BOOST_TEST(cache.size() == 3u);
}

BOOST_AUTO_TEST_CASE(the_least_recently_used_goes_first_within_the_budget) {
  PromptCache cache(100);
  cache.insert("a", {1}, bytes(40));
  cache.insert("a", {2}, bytes(40));
  BOOST_TEST(cache.bytes() == 80u);
  BOOST_TEST(cache.holds("a", {1}));  // now the most recent
  cache.insert("a", {3}, bytes(40));  // {2} goes
  BOOST_TEST(cache.size() == 2u);
  BOOST_TEST(cache.holds("a", {1}));
  BOOST_TEST(!cache.holds("a", {2}));
  BOOST_TEST(cache.holds("a", {3}));
  // The same prompt again replaces its state.
  cache.insert("a", {3}, bytes(50));
  BOOST_TEST(cache.size() == 2u);
  BOOST_TEST(cache.bytes() == 90u);
  // Larger than the whole budget: not kept, nothing dropped for it.
  BOOST_TEST(cache.fits(100));
  BOOST_TEST(!cache.fits(101));
  cache.insert("a", {4}, bytes(101));
  BOOST_TEST(cache.size() == 2u);
  BOOST_TEST(!cache.holds("a", {4}));
  // No state: not kept.
  cache.insert("a", {5}, nullptr);
  BOOST_TEST(cache.size() == 2u);
  // Off.
  PromptCache off(0);
  BOOST_TEST(!off.enabled());
  off.insert("a", {1}, bytes(1));
  BOOST_TEST(off.size() == 0u);
}
