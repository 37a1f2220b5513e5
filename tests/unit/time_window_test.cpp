// The temporal module's Mid tier: time expressions in a query read into a
// valid-time window, against a reference time (routing/time_window.h).
#define BOOST_TEST_MODULE time_window
#include <boost/test/unit_test.hpp>
#include <limits>
#include <random>
#include <string>

#include "kernel/routing/time_window.h"

using memos::kernel::routing::read_time_window;
using memos::kernel::routing::TimeWindow;

namespace {

constexpr std::int64_t kDay = 86'400'000;

// Days since the epoch of a civil date, counted the slow way.
std::int64_t day_of(int y, int m, int d) {
  auto leap = [](int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; };
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  std::int64_t days = 0;
  for (int year = 1970; year < y; ++year) days += leap(year) ? 366 : 365;
  for (int month = 1; month < m; ++month) days += kDays[month - 1] + (month == 2 && leap(y));
  return days + d - 1;
}
std::int64_t ms(int y, int m, int d) {
  return day_of(y, m, d) * kDay;
}

// Tuesday 15 August 2023, 14:00 UTC.
const std::int64_t kRef = ms(2023, 8, 15) + 14 * 3'600'000;

struct Expect {
  const char* query;
  std::int64_t from, to;
  const char* matched;
};

void check(const Expect& e, std::int64_t ref = kRef) {
  BOOST_TEST_CONTEXT(e.query) {
    auto w = read_time_window(e.query, ref);
    BOOST_REQUIRE(w.has_value());
    BOOST_TEST(w->from_ms == e.from);
    BOOST_TEST(w->to_ms == e.to);
    BOOST_TEST(w->matched == e.matched);
  }
}

void check_all(std::initializer_list<Expect> cases) {
  for (const Expect& e : cases) check(e);
}

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

}  // namespace

BOOST_AUTO_TEST_CASE(dates_months_years_and_seasons) {
  check_all({
      {"What happened on 2023-05-08?", ms(2023, 5, 8), ms(2023, 5, 9), "2023-05-08"},
      {"what did she do on 8 May 2023", ms(2023, 5, 8), ms(2023, 5, 9), "8 May 2023"},
      {"on the 8th of May", ms(2023, 5, 8), ms(2023, 5, 9), "8th of May"},
      {"May 8, 2022 was when", ms(2022, 5, 8), ms(2022, 5, 9), "May 8, 2022"},
      // A date without its year: the latest by the reference.
      {"on Dec 24", ms(2022, 12, 24), ms(2022, 12, 25), "Dec 24"},
      {"in June 2023", ms(2023, 6, 1), ms(2023, 7, 1), "June 2023"},
      {"In June", ms(2023, 6, 1), ms(2023, 7, 1), "June"},
      {"in September", ms(2022, 9, 1), ms(2022, 10, 1), "September"},
      {"in August", ms(2023, 8, 1), ms(2023, 9, 1), "August"},
      {"last August", ms(2022, 8, 1), ms(2022, 9, 1), "last August"},
      {"last May", ms(2023, 5, 1), ms(2023, 6, 1), "last May"},
      {"this March", ms(2023, 3, 1), ms(2023, 4, 1), "this March"},
      {"next July", ms(2024, 7, 1), ms(2024, 8, 1), "next July"},
      {"What did Melanie paint in 2022?", ms(2022, 1, 1), ms(2023, 1, 1), "2022"},
      {"summer 2022", ms(2022, 6, 1), ms(2022, 9, 1), "summer 2022"},
      {"last summer", ms(2022, 6, 1), ms(2022, 9, 1), "last summer"},
      {"in the spring", ms(2023, 3, 1), ms(2023, 6, 1), "spring"},
      {"last winter", ms(2022, 12, 1), ms(2023, 3, 1), "last winter"},
      {"last year", ms(2022, 1, 1), ms(2023, 1, 1), "last year"},
      {"this year", ms(2023, 1, 1), ms(2024, 1, 1), "this year"},
  });
}

BOOST_AUTO_TEST_CASE(spans_relative_to_the_reference) {
  check_all({
      {"today", ms(2023, 8, 15), ms(2023, 8, 16), "today"},
      {"What did I eat yesterday?", ms(2023, 8, 14), ms(2023, 8, 15), "yesterday"},
      {"last night", ms(2023, 8, 14), ms(2023, 8, 15), "last night"},
      {"this week", ms(2023, 8, 14), ms(2023, 8, 21), "this week"},
      {"last week", ms(2023, 8, 7), ms(2023, 8, 14), "last week"},
      {"next week", ms(2023, 8, 21), ms(2023, 8, 28), "next week"},
      {"last weekend", ms(2023, 8, 12), ms(2023, 8, 14), "last weekend"},
      {"this weekend", ms(2023, 8, 19), ms(2023, 8, 21), "this weekend"},
      {"last month", ms(2023, 7, 1), ms(2023, 8, 1), "last month"},
      {"3 days ago", ms(2023, 8, 12), ms(2023, 8, 13), "3 days ago"},
      {"two weeks ago", ms(2023, 7, 31), ms(2023, 8, 7), "two weeks ago"},
      {"a month ago", ms(2023, 7, 1), ms(2023, 8, 1), "a month ago"},
      {"a year ago", ms(2022, 1, 1), ms(2023, 1, 1), "a year ago"},
      {"in the past 3 days", ms(2023, 8, 12), ms(2023, 8, 16), "past 3 days"},
      {"over the last 2 weeks", ms(2023, 8, 1), ms(2023, 8, 16), "last 2 weeks"},
      {"the past month", ms(2023, 7, 15), ms(2023, 8, 16), "past month"},
      {"last Friday", ms(2023, 8, 11), ms(2023, 8, 12), "last Friday"},
      {"on Monday", ms(2023, 8, 14), ms(2023, 8, 15), "Monday"},
      {"on Thursday", ms(2023, 8, 10), ms(2023, 8, 11), "Thursday"},
      {"next Tuesday", ms(2023, 8, 22), ms(2023, 8, 23), "next Tuesday"},
  });
  // A month back from the 31st is the last day of a shorter month.
  check({"in the past month", ms(2023, 2, 28), ms(2023, 4, 1), "past month"}, ms(2023, 3, 31));
}

BOOST_AUTO_TEST_CASE(bounds_and_ranges) {
  check_all({
      {"before 2023", kMin, ms(2023, 1, 1), "before 2023"},
      {"after May 2023", ms(2023, 6, 1), kMax, "after May 2023"},
      {"since last summer", ms(2022, 6, 1), kMax, "since last summer"},
      {"until March 2021", kMin, ms(2021, 4, 1), "until March 2021"},
      {"between April and June 2023", ms(2023, 4, 1), ms(2023, 7, 1),
       "between April and June 2023"},
      // Measured from a named time (LoCoMo's dev questions ask so).
      {"What did John do the week before August 3, 2023?", ms(2023, 7, 27), ms(2023, 8, 3),
       "week before August 3, 2023"},
      {"the puppy she got two weeks before August 11, 2023", ms(2023, 7, 25), ms(2023, 8, 1),
       "two weeks before August 11, 2023"},
      {"3 days after May 8, 2023", ms(2023, 5, 11), ms(2023, 5, 12), "3 days after May 8, 2023"},
      {"the day after 2023-05-08", ms(2023, 5, 9), ms(2023, 5, 10), "day after 2023-05-08"},
      {"What did Maria do last weekend before April 10, 2023?", ms(2023, 4, 8), ms(2023, 4, 10),
       "last weekend before April 10, 2023"},
      {"last Friday before 2023-04-07", ms(2023, 3, 31), ms(2023, 4, 1),
       "last Friday before 2023-04-07"},
  });
}

BOOST_AUTO_TEST_CASE(words_that_are_not_times_are_not_read) {
  for (const char* q :
       {"", "   ", "What does Caroline like?", "May I ask about her hobbies?",
        "They march for rights", "the 2 dogs", "room 12345", "in 1850", "last", "ago", "the",
        "3 weeks", "weeks ago", "Caroline's sister", "two weeks before the trip"}) {
    BOOST_TEST(!read_time_window(q, kRef).has_value(), q);
  }
  // May and March in context are months.
  BOOST_TEST(read_time_window("What did she do in May?", kRef).has_value());
  BOOST_TEST(read_time_window("March 3", kRef).has_value());
  // An impossible date is not read as one; what is left of it may be.
  check({"31 February", ms(2023, 2, 1), ms(2023, 3, 1), "February"});
  check({"2023-02-30", ms(2023, 1, 1), ms(2024, 1, 1), "2023"});
  check({"between May and", ms(2023, 5, 1), ms(2023, 6, 1), "May"});
}

BOOST_AUTO_TEST_CASE(hostile_text_never_breaks_it) {
  // Long, odd and random inputs: a window or none, never a crash, and a
  // window is never empty or reversed.
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789 -,abcdefghijklmnopqrstuvwxyzMAY";
  for (int round = 0; round < 2000; ++round) {
    std::string q;
    const int n = static_cast<int>(rng() % 80);
    for (int i = 0; i < n; ++i) q.push_back(alphabet[rng() % alphabet.size()]);
    auto w = read_time_window(q, kRef);
    if (w) BOOST_TEST(w->from_ms < w->to_ms, q);
  }
  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += "day before ";
  nested += "2023";
  // Read once, from the last "before": no nesting deeper than one anchor.
  BOOST_TEST(read_time_window(nested, kRef)->matched == "before day before 2023");
  std::string lasts;
  for (int i = 0; i < 100000; ++i) lasts += "last week before ";
  BOOST_TEST(read_time_window(lasts + "2023", kRef).has_value());
  const std::string huge(1 << 20, '9');
  BOOST_TEST(!read_time_window(huge, kRef).has_value());
  BOOST_TEST(read_time_window(std::string(100000, ' ') + "in 2020", kRef).has_value());
  // Far references keep their arithmetic.
  BOOST_TEST(read_time_window("last year", ms(1970, 1, 1)).has_value());
  BOOST_TEST(read_time_window("yesterday", -5 * kDay)->from_ms == -6 * kDay);
}
