// printing.h — lets Boost.Test print SDK values and results in failed
// checks.
#pragma once

#include <ostream>
#include <string>

#include "memos/client.h"

namespace memos {
inline std::ostream& operator<<(std::ostream& out, ErrorCode code) {
  return out << to_string(code);
}
}  // namespace memos

namespace memos::testing {
// The error of a result, or "" (Boost evaluates messages even on success).
template <class T>
std::string why(const memos::Result<T>& r) {
  return r.ok() ? std::string() : r.error().message;
}
}  // namespace memos::testing
