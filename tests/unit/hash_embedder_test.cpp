#define BOOST_TEST_MODULE hash_embedder
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numeric>

#include "plugins/hash-embedder/hash_embedder.h"

using memos::embed::HashEmbedder;

namespace {

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0f);
}

}  // namespace

BOOST_AUTO_TEST_CASE(vectors_are_unit_length_and_deterministic) {
  HashEmbedder e(256);
  auto a = e.embed("Maya swims in the sea at Carcavelos");
  BOOST_TEST(a.size() == 256u);
  BOOST_TEST(dot(a, a) == 1.0f, boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(a == e.embed("Maya swims in the sea at Carcavelos"));
  // Case and punctuation do not matter.
  BOOST_TEST(a == e.embed("maya SWIMS in the sea, at Carcavelos!"));
}

BOOST_AUTO_TEST_CASE(the_hash_is_stable_across_builds) {
  // Index snapshots will depend on this: a fixed text has a fixed vector.
  HashEmbedder e(16);
  auto v = e.embed("peanut allergy");
  std::size_t nonzero = 0;
  for (float x : v) nonzero += x != 0.0f;
  BOOST_TEST(nonzero > 0u);
  BOOST_TEST(dot(v, v) == 1.0f, boost::test_tools::tolerance(1e-5f));
  auto again = HashEmbedder(16).embed("peanut allergy");
  BOOST_TEST(v == again);
}

BOOST_AUTO_TEST_CASE(empty_and_stop_word_only_text_is_the_zero_vector) {
  HashEmbedder e(64);
  for (const char* text : {"", "   ", "!!! ...", "the of and"}) {
    auto v = e.embed(text);
    // Stop words still give trigrams, so only truly empty text is zero.
    if (std::string(text).find_first_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos) {
      BOOST_TEST(dot(v, v) == 0.0f);
    }
  }
}

BOOST_AUTO_TEST_CASE(related_texts_score_higher_than_unrelated) {
  HashEmbedder e(256);
  auto doc = e.embed("Maya is allergic to peanuts and carries an EpiPen");
  auto related = e.embed("what is Maya allergic to");
  auto unrelated = e.embed("the quarterly budget spreadsheet for the lab");
  BOOST_TEST(dot(doc, related) > dot(doc, unrelated) + 0.1f);
  // Inflections share their stem.
  auto swims = e.embed("she swims every Saturday");
  auto swimming = e.embed("swimming");
  auto cooking = e.embed("cooking");
  BOOST_TEST(dot(swims, swimming) > dot(swims, cooking));
}

BOOST_AUTO_TEST_CASE(utf8_text_is_embedded_not_dropped) {
  HashEmbedder e(128);
  auto v = e.embed("Sardinha é uma gata cinzenta");
  BOOST_TEST(dot(v, v) == 1.0f, boost::test_tools::tolerance(1e-5f));
  BOOST_TEST(dot(v, e.embed("gata cinzenta")) > 0.3f);
}

BOOST_AUTO_TEST_CASE(huge_and_binary_input_is_handled) {
  HashEmbedder e(32);
  std::string big(1 << 20, 'a');
  for (std::size_t i = 0; i < big.size(); i += 7) big[i] = ' ';
  auto v = e.embed(big);
  BOOST_TEST(dot(v, v) == 1.0f, boost::test_tools::tolerance(1e-4f));
  std::string binary;
  for (int i = 0; i < 4096; ++i) binary.push_back(static_cast<char>(i * 37));
  auto b = e.embed(binary);
  BOOST_TEST(std::isfinite(dot(b, b)));
}
