// words.h — the words routing's modules compare: a query's against a
// memory's (pseudo-relevance feedback, extractive compression).
//
// A word is a run of ASCII letters and digits, lower-cased, or of bytes of
// UTF-8 sequences (kept as they are), at least three bytes long and not one
// of English's commonest function words ("the", "and", "what", ...). Short
// words and function words say little about what a memory is about and
// would otherwise dominate overlap counts; the retrievers' own analysis
// (stemming, stop lists per language) is theirs and is not repeated here.
// Errors: none.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace memos::kernel::routing {

// The words of `text`, in order, repeats kept.
std::vector<std::string> content_words(std::string_view text);

}  // namespace memos::kernel::routing
