// feedback_terms.h — pseudo-relevance feedback: the words the retrieve
// module's High tier adds to a query for a second lexical pass.
//
// A question rarely uses the words of the memory that answers it ("What
// did Caroline research?" against "...looking into adoption agencies");
// the best hits of a first pass often do. The words that weigh most in the
// first pass's best hits (rank-discounted term frequency, times an inverse
// document frequency over the whole candidate pool) and are not in the
// query are added, at most `max_terms`; a word in more than half of the
// pool says nothing about this question and is never added.
// Errors: none (no feedback or no pool gives no words).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace memos::kernel::routing {

struct FeedbackInput {
  std::string_view query;
  std::vector<std::string_view> feedback;  // the first pass's best hits, best first
  std::vector<std::string_view> pool;      // every candidate (feedback included)
  std::size_t max_terms = 5;
  std::size_t min_documents = 1;  // feedback hits a word must occur in
};

// The words to add, best first.
std::vector<std::string> feedback_terms(const FeedbackInput& input);

}  // namespace memos::kernel::routing
