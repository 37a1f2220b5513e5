// hash_embedder.h — "hash-v1", the built-in model-free embedder.
//
// Turns text into a dense vector by feature hashing, so that plaintext search
// works with no model at all:
//   - text is lowercased (ASCII) and split into words at every byte that is not
//     a letter, a digit or part of a UTF-8 sequence;
//   - English stop words ("the", "is", "who", ...) are dropped;
//   - features are word unigrams (weight 1) and bigrams (weight 0.5) of lightly
//     stemmed words ("swims", "swimming" -> "swim"), and the character
//     trigrams of each word padded with '^' and '$' (weight 0.2 each, so that
//     "runner" still shares something with "running");
//   - each feature is hashed (FNV-1a, then a 64-bit mixer) to a dimension and a
//     sign (signed hashing keeps collisions unbiased); a feature repeated n
//     times counts 1 + ln(n);
//   - the vector is L2-normalised, so inner product is cosine similarity.
// The hash is fixed: the same text gives the same vector in every build, which
// index snapshots will rely on. Thread-safe: embed() is const.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace memos::embed {

class HashEmbedder {
 public:
  static constexpr std::string_view kName = "hash-v1";

  // `dimension` must be >= 1.
  explicit HashEmbedder(std::size_t dimension) : dimension_(dimension) {}

  std::size_t dimension() const { return dimension_; }

  // Writes dimension() floats to `out`. Text with no features gives the zero
  // vector (it matches nothing).
  void embed(std::string_view text, std::span<float> out) const;
  std::vector<float> embed(std::string_view text) const;

 private:
  std::size_t dimension_;
};

}  // namespace memos::embed
