// utf8.h — generated text as valid UTF-8. Token pieces may end inside a
// multi-byte character (byte-fallback tokens); Cap'n Proto Text must be
// valid UTF-8 for memosd's clients, so broken sequences become U+FFFD.
#pragma once

#include <string>
#include <string_view>

namespace memos::llama_exec {

std::string valid_utf8(std::string_view bytes);

// How much of `bytes` can be shown now: all of it but a multi-byte
// character at its end that is not complete yet (a later token's piece may
// complete it). valid_utf8() of the parts cut there, joined, equals
// valid_utf8() of the whole: what streams is exactly the final text.
std::size_t shown_utf8_prefix(std::string_view bytes);

}  // namespace memos::llama_exec
