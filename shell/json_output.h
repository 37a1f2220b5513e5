// json_output.h — memctl's --json output, built with nlohmann-json: the
// document type, and how it is written. Keys keep the order they were set in
// (ordered_json), so the output reads as the human form does.
//
// memosd refuses stored text that is not UTF-8, but what memctl prints also
// holds bytes it did not check: a file or cube name as typed, echoed in an
// error. A string that is not valid UTF-8 is written with each invalid byte
// replaced by U+FFFD, so the output is always valid JSON (memctl(1),
// --json); control characters are escaped (\n, \u0001).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "memos/vocabulary.h"

namespace memos::shell {

using Json = nlohmann::ordered_json;

// The document as memctl prints it: one line, invalid UTF-8 replaced.
inline std::string json_text(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// A float the daemon computed (a score, an importance) with the precision it
// has: 0.9f prints as 0.9, not as the double nearest to it. Non-finite: null.
inline Json json_number(double value) {
  if (!std::isfinite(value)) return nullptr;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", value);
  return std::stod(buf);
}

// Ids as memctl prints them (format_id's text), in order.
inline Json ids_json(const std::vector<std::uint64_t>& ids) {
  Json j = Json::array();
  for (std::uint64_t id : ids) j.push_back(memos::format_id(id));
  return j;
}

}  // namespace memos::shell
