// text_format.h — how memctl fits text into its human output: lists joined
// on one line, and text whose line breaks and tabs would break a listing's
// columns (history, search hits, diffs) flattened to one line.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace memos::shell {

inline std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

inline std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

}  // namespace memos::shell
