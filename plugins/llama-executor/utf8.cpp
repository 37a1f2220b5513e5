#include "plugins/llama-executor/utf8.h"

namespace memos::llama_exec {

std::string valid_utf8(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, min = 0x10000, cp = c & 0x07;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    std::size_t j = 1;
    for (; j <= n && i + j < s.size(); ++j) {
      const auto d = static_cast<unsigned char>(s[i + j]);
      if ((d & 0xC0) != 0x80) break;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are refused too.
    if (j == n + 1 && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
      out.append(s.substr(i, n + 1));
      i += n + 1;
    } else {
      out += kReplacement;
      i += j;  // the lead byte and the continuation bytes read so far
    }
  }
  return out;
}

std::size_t shown_utf8_prefix(std::string_view s) {
  // A character is at most four bytes: look for its lead among the last three.
  for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: the lead is further back
    std::size_t need = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 4;
    }
    // A lead still waiting for its continuation bytes is held back; any
    // other byte (ASCII, a complete character, one valid_utf8() replaces
    // alone) ends what can be shown.
    return back < need ? s.size() - back : s.size();
  }
  return s.size();
}

}  // namespace memos::llama_exec
