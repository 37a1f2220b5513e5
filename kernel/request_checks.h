// request_checks.h — validation of client-supplied fields against the
// configured limits. Each returns "" when the value is acceptable, else a
// one-line reason fit for the client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kernel/config.h"
#include "memcube/store.h"

namespace memos::kernel {

// 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'.
std::string check_cube_name(std::string_view name);
bool is_valid_utf8(std::string_view s);
// "" (english) or a stemming language of Xapian 1.4 by name, e.g. "french".
std::string check_language(std::string_view language);

struct CheckFailure {
  bool too_large = false;  // a size limit (tooLarge) rather than a bad value (badRequest)
  std::string reason;
  bool failed() const { return !reason.empty(); }
};

CheckFailure check_text(std::string_view text, const StoreConfig& limits);
CheckFailure check_tags(const std::vector<std::string>& tags, const StoreConfig& limits);
CheckFailure check_meta(const std::vector<store::MetaEntry>& meta, const StoreConfig& limits);

}  // namespace memos::kernel
