// seeded_random.h — the one random stream memos-mkmodel draws its weights
// and adapters from: the same numbers on every machine and standard
// library, so a seed names a model (or an adapter) exactly.
#pragma once

#include <cstdint>
#include <string_view>

namespace memos::mkmodel {

// splitmix64: small, fast, and the same numbers everywhere (std's
// distributions are not specified bit for bit across standard libraries).
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float symmetric() { return static_cast<float>(next() >> 40) / 8388608.0f - 1.0f; }
};

// FNV-1a of a tensor's name: mixed into the seed so each tensor has a
// stream of its own, whatever order they are written in.
inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

}  // namespace memos::mkmodel
