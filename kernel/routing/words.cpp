#include "kernel/routing/words.h"

#include <algorithm>
#include <array>

namespace memos::kernel::routing {
namespace {

// Function words of three letters or more, sorted (binary search). Words of
// one or two letters are already too short to count.
constexpr std::array<std::string_view, 88> kFunctionWords = {
    "about", "after",  "again",  "all",   "also",    "and",   "any",   "are",     "because",
    "been",  "before", "being",  "both",  "but",     "can",   "could", "did",     "does",
    "doing", "down",   "during", "each",  "few",     "for",   "from",  "further", "had",
    "has",   "have",   "her",    "here",  "hers",    "him",   "his",   "how",     "into",
    "its",   "just",   "more",   "most",  "nor",     "not",   "now",   "off",     "once",
    "only",  "other",  "our",    "out",   "over",    "own",   "same",  "she",     "should",
    "some",  "such",   "than",   "that",  "the",     "their", "them",  "then",    "there",
    "these", "they",   "this",   "those", "through", "too",   "under", "until",   "very",
    "was",   "were",   "what",   "when",  "where",   "which", "while", "who",     "whom",
    "why",   "will",   "with",   "would", "you",     "your",  "yours",
};
static_assert(std::is_sorted(kFunctionWords.begin(), kFunctionWords.end()));

bool function_word(std::string_view w) {
  return std::binary_search(kFunctionWords.begin(), kFunctionWords.end(), w);
}

bool word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

}  // namespace

std::vector<std::string> content_words(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !word_byte(static_cast<unsigned char>(text[i]))) ++i;
    std::string word;
    for (; i < text.size() && word_byte(static_cast<unsigned char>(text[i])); ++i) {
      char c = text[i];
      word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    if (word.size() >= 3 && !function_word(word)) out.push_back(std::move(word));
  }
  return out;
}

}  // namespace memos::kernel::routing
