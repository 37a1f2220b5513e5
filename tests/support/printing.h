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
inline std::ostream& operator<<(std::ostream& out, SearchMode mode) {
  return out << to_string(mode);
}
inline std::ostream& operator<<(std::ostream& out, State state) {
  return out << to_string(state);
}
inline std::ostream& operator<<(std::ostream& out, Tier tier) {
  return out << to_string(tier);
}
inline std::ostream& operator<<(std::ostream& out, PluginState state) {
  return out << to_string(state);
}
inline std::ostream& operator<<(std::ostream& out, const ActivationOutcome& outcome) {
  return out << to_string(outcome);
}
}  // namespace memos

namespace memos::testing {
// The error of a result, or "" (Boost evaluates messages even on success).
template <class T>
std::string why(const memos::Result<T>& r) {
  return r.ok() ? std::string() : r.error().message;
}
}  // namespace memos::testing
