// fusion.h — reciprocal rank fusion with optional recency and importance
// weighting and MMR diversification: what the hybrid search mode ranks by.
//
// Pure functions over plain data, so the same ranking is testable without
// a plugin around it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memos::fusion {

struct Ranked {
  std::uint64_t id = 0;
  float score = 0;
};

struct RankedList {
  float weight = 1;
  std::vector<Ranked> hits;  // best first
};

struct Candidate {
  std::int64_t recorded_at_ms = 0;
  float importance = 0;       // 0..1
  std::vector<float> vector;  // unit length; empty: MMR treats it as unlike all
  float retention = 0;        // 0..1, R = exp(-t / S) (memos(7), "Scheduling")
};

struct Options {
  std::uint32_t k = 10;
  float rrf_k = 60;
  float recency_weight = 0;
  std::int64_t recency_half_life_ms = 30LL * 86'400'000;
  float importance_weight = 0;
  float retention_weight = 0;
  float mmr_lambda = 0;  // 0 or >= 1: off
  std::int64_t now_ms = 0;
};

// The fused top k, best first. Each id's relevance is
//   sum over lists of weight / (rrf_k + rank)   (rank from 1)
// divided by its largest possible value (so 1 = first in every list), plus
// recency_weight * 2^(-age / half_life), importance_weight * importance and
// retention_weight * retention.
// With MMR the next pick maximises
//   lambda * relevance - (1 - lambda) * (largest cosine to those picked).
// `candidates` maps ids to their attributes (missing ids get defaults).
std::vector<Ranked> fuse(const std::vector<RankedList>& lists,
                         const std::vector<std::pair<std::uint64_t, Candidate>>& candidates,
                         const Options& options);

}  // namespace memos::fusion
