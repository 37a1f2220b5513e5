// ipc/item_ids.cpp — item ids as text (memos/vocabulary.h): 13 characters
// of Crockford base32, which sort as the ids do, read back case-insensitively
// and forgiving the letters people confuse with digits.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "memos/vocabulary.h"

namespace memos {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

}  // namespace

std::string format_id(std::uint64_t id) {
  std::string out(13, '0');
  for (int i = 12; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kCrockford[id & 31];
    id >>= 5;
  }
  return out;
}

std::optional<std::uint64_t> parse_id(std::string_view s) {
  if (s.size() != 13) return std::nullopt;
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c == 'O') c = '0';
    if (c == 'I' || c == 'L') c = '1';
    const char* p = std::strchr(kCrockford, c);
    if (c == '\0' || !p) return std::nullopt;
    auto digit = static_cast<std::uint64_t>(p - kCrockford);
    if (i == 0 && digit > 15) return std::nullopt;  // 13 digits carry 65 bits; 64 fit
    id = (id << 5) | digit;
  }
  return id;
}

}  // namespace memos
