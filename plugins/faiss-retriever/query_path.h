// query_path.h — how FAISS answers a single query against an exact index,
// for the dense retriever and the benchmarks that compare with it in process.
//
// FAISS answers fewer than distance_compute_blas_threshold queries (20 by
// default) with its own distance loop, more through BLAS. Searches here are
// single queries. With the AVX2 build of FAISS (scripts/build-faiss-avx2)
// its own loop is the faster by far: BLAS packs the whole database matrix
// and allocates a block of 16 MiB on every call, which measured 4 to 6 times
// slower at 10,000 vectors of 256 dimensions (1.4 ms against 0.22 ms at
// p50). Debian's generic x86-64 FAISS does not vectorise its loop well, and
// OpenBLAS picks AVX2 kernels at run time, so there BLAS wins (0.87 ms
// against 1.36 ms) and every query goes through it.
#pragma once

#include <faiss/utils/distances.h>

namespace memos::faiss_retriever {

// The threshold to set once, before any search (it is a FAISS global).
inline int single_query_blas_threshold() {
#if defined(MEMOS_FAISS_AVX2)
  return 20;  // FAISS's default: its own AVX2 loop below 20 queries
#else
  return 1;  // every query through BLAS
#endif
}

}  // namespace memos::faiss_retriever
