// synthetic_text.h — seeded synthetic memories for the benchmarks: pseudo-word
// sentences with a Zipf-like word distribution, and tags.
//
// The standard distributions are implementation-defined, so these small
// helpers keep the workload identical across standard libraries for a seed.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace memos::bench {

using Rng = std::mt19937_64;

inline constexpr std::string_view kTags[] = {"work",    "home",    "travel",  "health",
                                             "finance", "family",  "project", "idea",
                                             "todo",    "meeting", "reading", "music"};

inline std::size_t uniform_index(Rng& rng, std::size_t lo, std::size_t hi) {  // [lo, hi]
  return lo + static_cast<std::size_t>(rng() % (hi - lo + 1));
}

inline double unit_interval(Rng& rng) {  // [0, 1)
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Pronounceable pseudo-words ("kelamo") so the embedder's stemming and
// trigrams see word-like text; unique so the vocabulary size is exact.
inline std::vector<std::string> make_vocabulary(Rng& rng, std::size_t size) {
  constexpr std::string_view kConsonants = "bcdfghjklmnprstvwz";
  constexpr std::string_view kVowels = "aeiou";
  std::vector<std::string> words;
  std::unordered_set<std::string> seen;
  while (words.size() < size) {
    std::string word;
    for (std::size_t s = uniform_index(rng, 2, 4); s > 0; --s) {
      word += kConsonants[uniform_index(rng, 0, kConsonants.size() - 1)];
      word += kVowels[uniform_index(rng, 0, kVowels.size() - 1)];
    }
    if (seen.insert(word).second) words.push_back(std::move(word));
  }
  return words;
}

// Draws ranks 0..n-1 with probability proportional to 1/(rank+1), like word
// frequencies in natural text: a few words are everywhere, most are rare.
class ZipfSampler {
 public:
  explicit ZipfSampler(std::size_t n) : cdf_(n) {
    double total = 0;
    for (std::size_t r = 0; r < n; ++r) cdf_[r] = total += 1.0 / static_cast<double>(r + 1);
    for (double& c : cdf_) c /= total;
  }
  std::size_t operator()(Rng& rng) const {
    auto it = std::upper_bound(cdf_.begin(), cdf_.end(), unit_interval(rng));
    return std::min(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

inline std::string make_sentence(Rng& rng, const std::vector<std::string>& vocabulary,
                                 const ZipfSampler& zipf, std::size_t min_words,
                                 std::size_t max_words) {
  std::string text;
  for (std::size_t n = uniform_index(rng, min_words, max_words); n > 0; --n) {
    if (!text.empty()) text += ' ';
    text += vocabulary[zipf(rng)];
  }
  return text;
}

// One or two distinct tags: memosd refuses a tag given twice.
inline std::vector<std::string> make_tags(Rng& rng) {
  constexpr std::size_t kTagCount = std::size(kTags);
  std::size_t first = uniform_index(rng, 0, kTagCount - 1);
  std::vector<std::string> tags{std::string(kTags[first])};
  if (uniform_index(rng, 0, 1) == 1) {
    std::size_t second = (first + uniform_index(rng, 1, kTagCount - 1)) % kTagCount;
    tags.emplace_back(kTags[second]);
  }
  return tags;
}

// ipc-search's workload, which bench-peers exports to other systems:
// `items` memories of 8–30 words with 1–2 tags, and `queries` queries of
// 3–8 words, from a 4000-word vocabulary. Separate streams per part, so the
// queries for a seed do not depend on `items`, and the first n memories are
// the same for every `items` >= n.
struct SyntheticMemory {
  std::string text;
  std::vector<std::string> tags;
};
struct SyntheticWorkload {
  std::vector<SyntheticMemory> memories;
  std::vector<std::string> queries;
};
inline SyntheticWorkload make_search_workload(std::uint64_t seed, std::size_t items,
                                              std::size_t queries) {
  constexpr std::size_t kVocabularySize = 4000;
  constexpr std::size_t kMinMemoryWords = 8, kMaxMemoryWords = 30;
  constexpr std::size_t kMinQueryWords = 3, kMaxQueryWords = 8;
  Rng vocabulary_rng(seed), memory_rng(seed + 1), query_rng(seed + 2);
  std::vector<std::string> vocabulary = make_vocabulary(vocabulary_rng, kVocabularySize);
  ZipfSampler zipf(vocabulary.size());
  SyntheticWorkload work;
  work.memories.reserve(items);
  for (std::size_t i = 0; i < items; ++i) {
    SyntheticMemory& memory = work.memories.emplace_back();
    memory.text = make_sentence(memory_rng, vocabulary, zipf, kMinMemoryWords, kMaxMemoryWords);
    memory.tags = make_tags(memory_rng);
  }
  work.queries.reserve(queries);
  for (std::size_t i = 0; i < queries; ++i) {
    work.queries.push_back(
        make_sentence(query_rng, vocabulary, zipf, kMinQueryWords, kMaxQueryWords));
  }
  return work;
}

}  // namespace memos::bench
