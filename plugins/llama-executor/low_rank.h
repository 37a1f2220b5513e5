// low_rank.h — the best rank-r approximation of a matrix (truncated SVD,
// LAPACK's sgesdd), as the two factors of a LoRA pair.
//
// Why the SVD: by Eckart–Young the first r singular triplets of a change
// ΔW are the rank-r matrix closest to it (Frobenius and spectral norms),
// so an adapter of rank r keeps as much of a fine-tune as any of its rank.
#pragma once

#include <cstdint>
#include <vector>

namespace memos::llama_exec {

// ΔW ≈ B·A, laid out as llama.cpp reads a LoRA pair for a weight of ggml
// shape [cols, rows] (y = W·x, x of `cols` values): `a` is lora_a, ggml
// [cols, rank] (rank rows of cols values), `b` is lora_b, ggml [rank,
// rows] (rows rows of rank values); with adapter.lora.alpha = rank the
// adapter at scale 1 adds exactly B·A.
struct LowRank {
  std::uint32_t rank = 0;
  std::vector<float> a, b;
  // The share of ΔW's energy (sum of squared singular values) kept: 1 when
  // the rank covers all of it.
  double kept = 0;
};

// `delta` holds rows x cols values, row-major (a ggml tensor's layout).
// The rank is min(rank, rows, cols). Throws std::runtime_error if LAPACK
// fails (it does not converge), std::invalid_argument for an empty matrix.
LowRank truncated_svd(const std::vector<float>& delta, std::int64_t rows, std::int64_t cols,
                      std::uint32_t rank);

}  // namespace memos::llama_exec
