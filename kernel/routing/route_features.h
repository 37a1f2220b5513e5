// route_features.h — what a router knows of a query before any costly
// module runs (memos(7), "Routing"; plugin.capnp RouteRequest.features):
// cheap facts of its words, and of a low-tier (BM25) retrieval already run.
//
//   words, content_words   log(1 + count): how much the question says
//   names                  log(1 + capitalised words after the first)
//   digits                 1 if a digit appears
//   time_window            1 if the temporal module reads a window in it
//   time_question          1 if it asks when, how long, what year/month/date/day
//   q_when q_who q_where q_what q_which q_how q_why q_yesno
//                          1 for the question's first word (yesno: is, did, ...)
//   low_top                log(1 + the best BM25 score)
//   low_margin             (best - second) / best: one memory stands out
//   low_tail               k-th / best: the hits are alike
//   low_hits               hits / k: how many memories share a word with it
//
// The names are part of the router's contract: a trained router reads the
// ones it was trained on, so a name is never reused for another meaning.
// Errors: none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/search.h"

namespace memos::kernel::routing {

struct NamedValue {
  std::string name;
  float value = 0;
};

std::vector<NamedValue> route_features(std::string_view query, std::int64_t reference_ms,
                                       const std::vector<SearchHit>& low_hits, std::uint32_t k);

}  // namespace memos::kernel::routing
