// utf8.h — generated text as valid UTF-8. Token pieces may end inside a
// multi-byte character (byte-fallback tokens); Cap'n Proto Text must be
// valid UTF-8 for memosd's clients, so broken sequences become U+FFFD.
#pragma once

#include <string>
#include <string_view>

namespace memos::llama_exec {

std::string valid_utf8(std::string_view bytes);

}  // namespace memos::llama_exec
