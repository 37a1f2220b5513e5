#include "plugins/hash-embedder/hash_embedder.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace memos::embed {
namespace {

constexpr float kUnigramWeight = 1.0f;
constexpr float kBigramWeight = 0.5f;
constexpr float kTrigramWeight = 0.2f;

// English function words carry no topic: as unigrams they only add the same
// similarity to every pair of sentences, so they are skipped (they still
// break bigrams, which keeps "New York" apart from "new ... york").
constexpr std::string_view kStopWords[] = {
    "a",     "about", "after", "all",  "also", "am",   "an",    "and",  "any",   "are",  "as",
    "at",    "be",    "been",  "but",  "by",   "can",  "could", "did",  "do",    "does", "for",
    "from",  "had",   "has",   "have", "he",   "her",  "hers",  "him",  "his",   "how",  "i",
    "if",    "in",    "into",  "is",   "it",   "its",  "me",    "my",   "no",    "not",  "of",
    "on",    "or",    "our",   "she",  "so",   "than", "that",  "the",  "their", "them", "then",
    "there", "these", "they",  "this", "to",   "was",  "we",    "were", "what",  "when", "where",
    "which", "who",   "whom",  "why",  "will", "with", "would", "you",  "your"};

bool is_stop_word(std::string_view w) {
  for (auto s : kStopWords) {
    if (s == w) return true;
  }
  return false;
}

// A light suffix stripper (not a full Porter stemmer) so that "swims",
// "swimming" and "swim" share their unigram: plural and verb endings go, and
// a doubled final consonant left behind is undoubled.
std::string stem(std::string w) {
  auto strip = [&](std::string_view suffix, std::size_t keep) {
    if (w.size() >= suffix.size() + keep && w.ends_with(suffix)) {
      w.resize(w.size() - suffix.size());
      return true;
    }
    return false;
  };
  if (strip("ies", 3)) {
    w += 'y';
  } else if (strip("ing", 3) || strip("ed", 3)) {
    std::size_t n = w.size();
    if (n >= 2 && w[n - 1] == w[n - 2] &&
        std::string_view("aeiouls").find(w[n - 1]) == std::string_view::npos) {
      w.pop_back();
    }
  } else if (!w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is")) {
    if (!strip("es", 4)) strip("s", 3);
  }
  return w;
}

// Feature kinds are salted into the hash so "ab" the word and "ab" the
// trigram never collide by construction.
enum class Kind : std::uint8_t { unigram = 1, bigram = 2, trigram = 3 };

std::uint64_t fnv1a(Kind kind, std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  h = (h ^ static_cast<std::uint8_t>(kind)) * 1099511628211ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  // splitmix64 finaliser: FNV's low bits are weak for a modulus.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (unsigned char c : text) {
    if (is_word_byte(c)) {
      current.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  return words;
}

}  // namespace

void HashEmbedder::embed(std::string_view text, std::span<float> out) const {
  std::fill(out.begin(), out.end(), 0.0f);
  // Feature hash -> (weight, occurrences), so repeats are damped with a log.
  std::unordered_map<std::uint64_t, std::pair<float, int>> features;
  auto add = [&](Kind kind, std::string_view s, float weight) {
    auto& f = features[fnv1a(kind, s)];
    f.first = weight;
    f.second += 1;
  };
  std::vector<std::string> words = words_of(text);
  std::vector<std::string> stems;
  stems.reserve(words.size());
  for (const auto& w : words) stems.push_back(is_stop_word(w) ? std::string() : stem(w));
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (stems[i].empty()) continue;
    add(Kind::unigram, stems[i], kUnigramWeight);
    if (i + 1 < words.size() && !stems[i + 1].empty()) {
      add(Kind::bigram, stems[i] + ' ' + stems[i + 1], kBigramWeight);
    }
    std::string padded = '^' + words[i] + '$';
    for (std::size_t j = 0; j + 3 <= padded.size(); ++j) {
      add(Kind::trigram, std::string_view(padded).substr(j, 3), kTrigramWeight);
    }
  }
  for (const auto& [hash, f] : features) {
    float value = f.first * (1.0f + std::log(static_cast<float>(f.second)));
    std::size_t slot = static_cast<std::size_t>(hash % dimension_);
    out[slot] += (hash >> 63) ? -value : value;
  }
  double norm = 0;
  for (float v : out) norm += double{v} * v;
  if (norm > 0) {
    float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& v : out) v *= inv;
  }
}

std::vector<float> HashEmbedder::embed(std::string_view text) const {
  std::vector<float> v(dimension_);
  embed(text, v);
  return v;
}

}  // namespace memos::embed
