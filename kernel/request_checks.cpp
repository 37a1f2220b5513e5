#include "kernel/request_checks.h"

#include <set>
#include <string>

namespace memos::kernel {

namespace {

// Cube names and snapshot tags follow one rule; `what` names which it is.
Status check_name(std::string_view name, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return Status::bad_request(std::string(what) + " " + std::string(why));
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 64) return bad("is longer than 64 characters");
  if (name[0] == '.' || name[0] == '-') return bad("must not start with '.' or '-'");
  for (unsigned char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return bad("may hold only letters, digits, '.', '_' and '-'");
  }
  return {};
}

}  // namespace

Status check_cube_name(std::string_view name) {
  return check_name(name, "cube name");
}
Status check_snapshot_tag(std::string_view tag) {
  return check_name(tag, "snapshot tag");
}

Status check_language(std::string_view language) {
  // Xapian 1.4's stemmers; the lexical retriever refuses any other.
  static constexpr std::string_view kLanguages[] = {
      "none",       "arabic",    "armenian",     "basque",    "catalan", "danish",
      "dutch",      "english",   "earlyenglish", "finnish",   "french",  "german",
      "german2",    "hungarian", "indonesian",   "irish",     "italian", "kraaij_pohlmann",
      "lithuanian", "lovins",    "nepali",       "norwegian", "porter",  "portuguese",
      "romanian",   "russian",   "spanish",      "swedish",   "tamil",   "turkish"};
  if (language.empty()) return {};
  for (auto l : kLanguages) {
    if (l == language) return {};
  }
  return Status::bad_request(
      "language '" + std::string(language.substr(0, 32)) +
      "' is unknown (english, french, german, spanish, ... or none; see memctl(1))");
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      if (c == 0) return false;  // Cap'n Proto text is NUL-terminated
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (std::size_t j = 1; j <= n; ++j) {
      auto cc = static_cast<unsigned char>(s[i + j]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Status check_text(std::string_view text, const StoreConfig& limits) {
  if (text.size() > limits.max_text_bytes) {
    return Status::too_large("text is " + std::to_string(text.size()) +
                             " bytes, more than max_text_bytes (" +
                             std::to_string(limits.max_text_bytes) + ")");
  }
  if (text.find('\0') != std::string_view::npos)
    return Status::bad_request("text holds a NUL byte");
  if (!is_valid_utf8(text)) return Status::bad_request("text is not valid UTF-8");
  return {};
}

Status check_not_blank(std::string_view text) {
  if (text.empty()) return Status::bad_request("text is empty");
  if (text.find_first_not_of(" \t\n\r\v\f") == std::string_view::npos)
    return Status::bad_request("text is only whitespace");
  return {};
}

Status check_session(std::string_view session, const StoreConfig& limits) {
  if (session.size() > limits.max_tag_bytes)
    return Status::too_large("session id is longer than max_tag_bytes");
  if (!is_valid_utf8(session)) return Status::bad_request("session id is not valid UTF-8");
  return {};
}

Status check_tags(const std::vector<std::string>& tags, const StoreConfig& limits) {
  if (tags.size() > limits.max_tags) {
    return Status::too_large(std::to_string(tags.size()) + " tags, more than max_tags (" +
                             std::to_string(limits.max_tags) + ")");
  }
  std::set<std::string_view> seen;
  for (const auto& t : tags) {
    if (t.empty()) return Status::bad_request("a tag is empty");
    if (t.size() > limits.max_tag_bytes)
      return Status::too_large("a tag is longer than max_tag_bytes");
    if (!is_valid_utf8(t)) return Status::bad_request("a tag is not valid UTF-8");
    if (!seen.insert(t).second) return Status::bad_request("tag '" + t + "' is given twice");
  }
  return {};
}

Status check_meta(const std::vector<store::MetaEntry>& meta, const StoreConfig& limits) {
  if (meta.size() > limits.max_meta_entries) {
    return Status::too_large(std::to_string(meta.size()) +
                             " metadata entries, more than max_meta_entries (" +
                             std::to_string(limits.max_meta_entries) + ")");
  }
  std::set<std::string_view> seen;
  for (const auto& m : meta) {
    if (m.key.empty()) return Status::bad_request("a metadata key is empty");
    if (m.key.size() > limits.max_meta_key_bytes) {
      return Status::too_large("a metadata key is longer than max_meta_key_bytes");
    }
    if (m.value.size() > limits.max_meta_value_bytes) {
      return Status::too_large("a metadata value is longer than max_meta_value_bytes");
    }
    if (!is_valid_utf8(m.key) || !is_valid_utf8(m.value)) {
      return Status::bad_request("metadata is not valid UTF-8");
    }
    if (!seen.insert(m.key).second)
      return Status::bad_request("metadata key '" + m.key + "' is given twice");
  }
  return {};
}

}  // namespace memos::kernel
