// decimal.h — the unsigned numbers in the engines' protocol lines and
// replies (sizes, sequences, tokens): digits only (no sign, no space),
// refused past 64 bits rather than wrapped.
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace memos::cluster {

// False, `*out` unspecified, unless all of `text` is one such number.
inline bool parse_decimal(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace memos::cluster
