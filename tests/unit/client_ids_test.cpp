#define BOOST_TEST_MODULE client_ids
#include <boost/test/unit_test.hpp>

#include <random>

#include "memos/client.h"

BOOST_AUTO_TEST_CASE(ids_round_trip_and_sort_like_numbers) {
  std::mt19937_64 rng(1);
  std::string previous;
  std::uint64_t previous_id = 0;
  for (int i = 0; i < 10000; ++i) {
    std::uint64_t id = previous_id + 1 + rng() % 1000000;
    std::string text = memos::format_id(id);
    BOOST_TEST(text.size() == 13u);
    BOOST_TEST(memos::parse_id(text).value() == id);
    BOOST_TEST(text > previous);
    previous = text;
    previous_id = id;
  }
  for (std::uint64_t id : {std::uint64_t{0}, ~std::uint64_t{0}}) {
    BOOST_TEST(memos::parse_id(memos::format_id(id)).value() == id);
  }
}

BOOST_AUTO_TEST_CASE(parsing_is_forgiving_of_case_and_lookalikes_but_strict_otherwise) {
  auto id = memos::parse_id("038GWRXC9G000").value();
  BOOST_TEST(memos::parse_id("038gwrxc9g000").value() == id);
  BOOST_TEST(memos::parse_id("o38GWRXC9GOOO").value() == id);
  for (const char* bad : {"", "038GWRXC9G00", "038GWRXC9G0000", "038GWRXC9G00U", "Z38GWRXC9G000",
                          "038GWRXC9G00-", "038GWRXC9G00\x80"}) {
    BOOST_TEST(!memos::parse_id(bad).has_value(), bad);
  }
}

BOOST_AUTO_TEST_CASE(error_codes_have_schema_names) {
  BOOST_TEST(std::string(memos::to_string(memos::ErrorCode::not_found)) == "notFound");
  BOOST_TEST(std::string(memos::to_string(memos::ErrorCode::storage_full)) == "storageFull");
}
