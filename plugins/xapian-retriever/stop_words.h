// stop_words.h — the stop-word lists of the lexical retriever.
//
// Stop words are skipped when indexing and dropped from queries: they occur
// in nearly every memory, so they only add noise to BM25 scores.
#pragma once

#include <xapian.h>

#include <memory>
#include <string>

namespace memos::lexical {

// The stopper for a canonical Xapian language name ("english"), or null when
// there is no list for it (every word is then indexed).
std::unique_ptr<Xapian::SimpleStopper> stopper_for(const std::string& language);

}  // namespace memos::lexical
