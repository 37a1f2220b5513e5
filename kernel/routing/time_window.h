// time_window.h — the valid-time window a query's words name: the Mid tier
// of the temporal module (issue 19: budget-tier routing), which turns
// "what did Maya do last May?" into a window that search can filter or
// boost by.
//
// Rule-based and English, read against `reference_ms` (when the question is
// asked; UTC):
//   dates      "2023-05-08", "8 May 2023", "the 8th of May", "May 8, 2023"
//   months     "May 2023", "in June", "last May", "this March", "next July"
//   years      "in 2023", "last year", "this year"
//   seasons    "summer 2022", "last winter" (northern: Mar-May is spring)
//   weekdays   "on Friday", "last Friday"
//   spans      "today", "yesterday", "last night", "this|last|next week",
//              "last weekend", "this|last month", "3 days ago",
//              "two weeks ago", "a year ago",
//              "in the past|last 3 days|weeks|months|years"
//   bounds     "before X", "after X", "since X", "until X",
//              "between X and Y", for any X and Y above
//   measured   "the week before X", "two weeks before X", "3 days after X"
//              "last weekend before X", "last Friday before X"
// The words "May" and "March" are months only beside a preposition, a
// qualifier or a number ("may I ask", "they march" are not). An expression
// anchored on an event rather than a time ("two weeks before the trip") is
// not read: that needs a model (the High tier).
//
// The first expression in the query wins; a query with none has no window.
// Errors: none (words that are not a time expression are simply not one).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace memos::kernel::routing {

struct TimeWindow {
  // [from_ms, to_ms): a bound left open is the type's extreme.
  std::int64_t from_ms = std::numeric_limits<std::int64_t>::min();
  std::int64_t to_ms = std::numeric_limits<std::int64_t>::max();
  std::string matched;  // the words read, as they stand in the query
};

std::optional<TimeWindow> read_time_window(std::string_view query, std::int64_t reference_ms);

}  // namespace memos::kernel::routing
