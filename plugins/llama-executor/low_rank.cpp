#include "plugins/llama-executor/low_rank.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

// LAPACK (Fortran ABI; the trailing length is gfortran's hidden one for
// the character argument).
extern "C" void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda,
                        float* s, float* u, const int* ldu, float* vt, const int* ldvt, float* work,
                        const int* lwork, int* iwork, int* info, std::size_t jobz_len);

namespace memos::llama_exec {

LowRank truncated_svd(const std::vector<float>& delta, std::int64_t rows, std::int64_t cols,
                      std::uint32_t rank) {
  if (rows <= 0 || cols <= 0 || delta.size() != static_cast<std::size_t>(rows * cols)) {
    throw std::invalid_argument("truncated_svd: the matrix is empty or not rows x cols");
  }
  // Row-major rows x cols is column-major M = ΔWᵀ (m = cols, n = rows).
  // M = U S Vᵀ, so ΔW = V S Uᵀ: lora_a's rows are U's columns, lora_b's
  // columns are V's columns times S.
  const int m = static_cast<int>(cols), n = static_cast<int>(rows), k = std::min(m, n);
  std::vector<float> work_matrix(delta);  // sgesdd overwrites its input
  std::vector<float> s(static_cast<std::size_t>(k));
  std::vector<float> u(static_cast<std::size_t>(m) * static_cast<std::size_t>(k));
  std::vector<float> vt(static_cast<std::size_t>(k) * static_cast<std::size_t>(n));
  std::vector<int> iwork(8 * static_cast<std::size_t>(k));
  int info = 0, lwork = -1;
  float query = 0;
  const char jobz = 'S';
  sgesdd_(&jobz, &m, &n, work_matrix.data(), &m, s.data(), u.data(), &m, vt.data(), &k, &query,
          &lwork, iwork.data(), &info, 1);  // asks for the workspace's size
  lwork = static_cast<int>(query) + 1;
  std::vector<float> work(static_cast<std::size_t>(lwork));
  sgesdd_(&jobz, &m, &n, work_matrix.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(),
          &lwork, iwork.data(), &info, 1);
  if (info != 0) {
    throw std::runtime_error("the SVD of a " + std::to_string(rows) + "x" + std::to_string(cols) +
                             " change failed (LAPACK sgesdd info " + std::to_string(info) + ")");
  }
  LowRank out;
  out.rank = std::min<std::uint32_t>(rank, static_cast<std::uint32_t>(k));
  const std::size_t r = out.rank;
  const auto ucols = static_cast<std::size_t>(m);
  out.a.resize(r * ucols);
  for (std::size_t i = 0; i < r; ++i) {
    std::copy_n(u.data() + i * ucols, ucols, out.a.data() + i * ucols);
  }
  out.b.resize(static_cast<std::size_t>(n) * r);
  for (std::size_t j = 0; j < static_cast<std::size_t>(n); ++j) {
    for (std::size_t i = 0; i < r; ++i) {
      out.b[j * r + i] = s[i] * vt[i + j * static_cast<std::size_t>(k)];
    }
  }
  double all = 0, kept = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double e = static_cast<double>(s[i]) * s[i];
    all += e;
    if (i < r) kept += e;
  }
  out.kept = all > 0 ? kept / all : 1;
  return out;
}

}  // namespace memos::llama_exec
