#define BOOST_TEST_MODULE request_checks
#include <boost/test/unit_test.hpp>

#include "kernel/request_checks.h"

using namespace memos::kernel;

BOOST_AUTO_TEST_CASE(cube_names) {
  for (const char* ok : {"a", "maya", "Maya_2.notes-x", "0"}) BOOST_TEST(check_cube_name(ok).ok());
  for (const char* bad : {"", ".hidden", "-flag", "a/b", "a b", "ü", "a\nb"}) {
    Status s = check_cube_name(bad);
    BOOST_TEST(!s.ok(), bad);
    BOOST_TEST((s.code == Code::bad_request), bad);
    BOOST_TEST(s.message.rfind("cube name ", 0) == 0, s.message);
  }
  BOOST_TEST(check_cube_name(std::string(64, 'a')).ok());
  BOOST_TEST(!check_cube_name(std::string(65, 'a')).ok());
}

// Snapshot tags follow the cube-name rule, and say "snapshot tag" (once built
// by slicing the cube-name message).
BOOST_AUTO_TEST_CASE(snapshot_tags) {
  BOOST_TEST(check_snapshot_tag("v1.0-final").ok());
  BOOST_TEST(check_snapshot_tag("").message == "snapshot tag is empty");
  BOOST_TEST(check_snapshot_tag("-x").message == "snapshot tag must not start with '.' or '-'");
  BOOST_TEST(check_snapshot_tag(std::string(65, 't')).message ==
             "snapshot tag is longer than 64 characters");
  BOOST_TEST(check_snapshot_tag("a b").message ==
             "snapshot tag may hold only letters, digits, '.', '_' and '-'");
}

BOOST_AUTO_TEST_CASE(languages) {
  BOOST_TEST(check_language("").ok());
  BOOST_TEST(check_language("french").ok());
  Status s = check_language(std::string(1000, 'x'));
  BOOST_TEST((s.code == Code::bad_request));
  BOOST_TEST(s.message.size() < 200);  // the name is cut, not echoed whole
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
  auto too_large = [](const Status& s) { return s.code == Code::too_large; };
  auto bad_request = [](const Status& s) { return s.code == Code::bad_request; };
  BOOST_TEST(check_text("0123456789", limits).ok());
  BOOST_TEST(too_large(check_text("0123456789a", limits)));
  BOOST_TEST(bad_request(check_text(std::string("\xff"), limits)));

  BOOST_TEST(check_tags({"a", "b"}, limits).ok());
  BOOST_TEST(too_large(check_tags({"a", "b", "c"}, limits)));
  BOOST_TEST(too_large(check_tags({"abcde"}, limits)));
  BOOST_TEST(bad_request(check_tags({""}, limits)));
  BOOST_TEST(bad_request(check_tags({"a", "a"}, limits)));

  BOOST_TEST(check_meta({{"k", "v"}}, limits).ok());
  BOOST_TEST(too_large(check_meta({{"k", "v"}, {"j", "w"}}, limits)));
  BOOST_TEST(bad_request(check_meta({{"", "v"}}, limits)));
  BOOST_TEST(too_large(check_meta({{"long", "v"}}, limits)));
  BOOST_TEST(too_large(check_meta({{"k", "long"}}, limits)));
}
