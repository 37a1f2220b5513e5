// request_checks.h — validation of client-supplied fields against the
// configured limits. Each returns success, or a Status fit for the client:
// bad_request for a value that is not acceptable, too_large for one past a
// configured limit (so the client knows which limit to raise).
#pragma once

#include <string_view>
#include <vector>

#include "kernel/config.h"
#include "kernel/status.h"
#include "memcube/store.h"

namespace memos::kernel {

// 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'. Errors: bad_request.
Status check_cube_name(std::string_view name);
// The same rule for a snapshot's tag. Errors: bad_request.
Status check_snapshot_tag(std::string_view tag);
bool is_valid_utf8(std::string_view s);
// "" (english) or a stemming language of Xapian 1.4 by name, e.g. "french".
// Errors: bad_request.
Status check_language(std::string_view language);

// Errors: too_large (max_text_bytes), bad_request (not UTF-8).
Status check_text(std::string_view text, const StoreConfig& limits);
// An item's text must say something: not empty, not only ASCII whitespace
// (space, tab, newline, carriage return, vertical tab, form feed).
// Errors: bad_request.
Status check_not_blank(std::string_view text);
// A write's session id: at most max_tag_bytes of UTF-8 without NUL.
// Errors: too_large, bad_request.
Status check_session(std::string_view session, const StoreConfig& limits);
// Errors: too_large (max_tags, max_tag_bytes), bad_request (empty, not
// UTF-8, given twice).
Status check_tags(const std::vector<std::string>& tags, const StoreConfig& limits);
// Errors: too_large (max_meta_entries, key or value bytes), bad_request
// (empty key, not UTF-8, key given twice).
Status check_meta(const std::vector<store::MetaEntry>& meta, const StoreConfig& limits);

}  // namespace memos::kernel
