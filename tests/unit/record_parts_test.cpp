// A record too large for one log message goes in parts and comes back whole
// (cluster/record_parts.h); parts out of order, of an abandoned group, or
// with a malformed header never make a record.
#define BOOST_TEST_MODULE record_parts
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "cluster/record_parts.h"

using namespace memos::cluster;

namespace {

StoredMessage message(std::uint64_t sequence, std::string_view bytes, const Headers& headers) {
  StoredMessage m;
  m.sequence = sequence;
  m.data = std::string(bytes);
  m.headers = headers;
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_record_split_comes_back_whole) {
  std::string record;
  for (int i = 0; i < 10000; ++i) record += static_cast<char>('a' + i % 26);
  for (std::size_t limit : {std::size_t{1} << 20, std::size_t{2048}, std::size_t{1500}}) {
    std::vector<RecordPart> parts;
    BOOST_REQUIRE(split_record(record, limit, &parts).ok());
    BOOST_TEST((parts.size() > 1) == (record.size() > limit - 512), limit);
    PartAssembler reader;
    std::string whole;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      BOOST_TEST(parts[i].bytes.size() + 512 <= limit);
      BOOST_REQUIRE(reader.take(message(i + 1, parts[i].bytes, parts[i].headers), &whole).ok());
      BOOST_TEST(whole.empty() == (i + 1 < parts.size()));
    }
    BOOST_TEST(whole == record);
  }
  std::vector<RecordPart> parts;
  BOOST_TEST(
      (split_record(std::string(kMaxParts * 600 + 1, 'x'), 1112, &parts).code == Errc::conflict));
}

BOOST_AUTO_TEST_CASE(parts_of_an_abandoned_group_make_no_record) {
  PartAssembler reader;
  std::string whole;
  // Parts 1 and 2 of 3, then a whole record: the group was abandoned.
  BOOST_REQUIRE(reader.take(message(1, "a", {{kPartHeader, "1/3"}}), &whole).ok());
  BOOST_REQUIRE(reader.take(message(2, "b", {{kPartHeader, "2/3"}}), &whole).ok());
  BOOST_REQUIRE(reader.take(message(3, "whole", {}), &whole).ok());
  BOOST_TEST(whole == "whole");
  // A part 3 of 3 with no beginning (this node started reading after it).
  BOOST_REQUIRE(reader.take(message(4, "c", {{kPartHeader, "3/3"}}), &whole).ok());
  BOOST_TEST(whole.empty());
  // Part 2 of a different count than part 1: not one group.
  BOOST_REQUIRE(reader.take(message(5, "a", {{kPartHeader, "1/2"}}), &whole).ok());
  BOOST_REQUIRE(reader.take(message(6, "b", {{kPartHeader, "2/3"}}), &whole).ok());
  BOOST_TEST(whole.empty());
  // A group begun again after an abandoned one is whole.
  BOOST_REQUIRE(reader.take(message(7, "x", {{kPartHeader, "1/2"}}), &whole).ok());
  BOOST_REQUIRE(reader.take(message(8, "y", {{kPartHeader, "2/2"}}), &whole).ok());
  BOOST_TEST(whole == "xy");
}

BOOST_AUTO_TEST_CASE(a_malformed_part_header_is_refused_by_name) {
  for (const char* bad : {"0/1", "2/1", "1/0", "1/4097", "x/2", "1/2junk", "1", "/", "1/-2",
                          "99999999999999999999/2"}) {
    PartAssembler reader;
    std::string whole = "left";
    const Status s = reader.take(message(9, "data", {{kPartHeader, bad}}), &whole);
    BOOST_TEST((s.code == Errc::corrupt), bad);
    BOOST_TEST(s.message.find("log record 9") != std::string::npos, s.message);
    BOOST_TEST(whole.empty());
  }
}
