#define BOOST_TEST_MODULE request_checks
#include <boost/test/unit_test.hpp>

#include "kernel/request_checks.h"

using namespace memos::kernel;

BOOST_AUTO_TEST_CASE(cube_names) {
  for (const char* ok : {"a", "maya", "Maya_2.notes-x", "0"}) BOOST_TEST(check_cube_name(ok) == "");
  for (const char* bad : {"", ".hidden", "-flag", "a/b", "a b", "ü", "a\nb"}) {
    BOOST_TEST(check_cube_name(bad) != "", bad);
  }
  BOOST_TEST(check_cube_name(std::string(64, 'a')) == "");
  BOOST_TEST(check_cube_name(std::string(65, 'a')) != "");
}

BOOST_AUTO_TEST_CASE(utf8_validation) {
  BOOST_TEST(is_valid_utf8("plain"));
  BOOST_TEST(is_valid_utf8("Sardinha é uma gata — 猫 🐈"));
  BOOST_TEST(!is_valid_utf8(std::string("\xff")));
  BOOST_TEST(!is_valid_utf8(std::string("\xc3")));              // truncated
  BOOST_TEST(!is_valid_utf8(std::string("\xc0\xaf")));          // overlong '/'
  BOOST_TEST(!is_valid_utf8(std::string("\xed\xa0\x80")));      // surrogate
  BOOST_TEST(!is_valid_utf8(std::string("\xf4\x90\x80\x80")));  // past U+10FFFF
  BOOST_TEST(!is_valid_utf8(std::string("a\0b", 3)));           // NUL
  BOOST_TEST(!is_valid_utf8(std::string("\xe2\x82")));          // truncated at end
}

BOOST_AUTO_TEST_CASE(size_limits) {
  StoreConfig limits;
  limits.max_text_bytes = 10;
  limits.max_tags = 2;
  limits.max_tag_bytes = 4;
  limits.max_meta_entries = 1;
  limits.max_meta_key_bytes = 3;
  limits.max_meta_value_bytes = 3;
  BOOST_TEST(!check_text("0123456789", limits).failed());
  auto big = check_text("0123456789a", limits);
  BOOST_TEST(big.failed());
  BOOST_TEST(big.too_large);
  auto bad = check_text(std::string("\xff"), limits);
  BOOST_TEST(bad.failed());
  BOOST_TEST(!bad.too_large);

  BOOST_TEST(!check_tags({"a", "b"}, limits).failed());
  BOOST_TEST(check_tags({"a", "b", "c"}, limits).too_large);
  BOOST_TEST(check_tags({"abcde"}, limits).too_large);
  BOOST_TEST(check_tags({""}, limits).failed());
  BOOST_TEST(check_tags({"a", "a"}, limits).failed());

  BOOST_TEST(!check_meta({{"k", "v"}}, limits).failed());
  BOOST_TEST(check_meta({{"k", "v"}, {"j", "w"}}, limits).too_large);
  BOOST_TEST(check_meta({{"", "v"}}, limits).failed());
  BOOST_TEST(check_meta({{"long", "v"}}, limits).too_large);
  BOOST_TEST(check_meta({{"k", "long"}}, limits).too_large);
}
