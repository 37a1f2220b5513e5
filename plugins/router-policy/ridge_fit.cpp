#include "plugins/router-policy/ridge_fit.h"

#include <cmath>

namespace memos::router_policy {

RidgeFit::RidgeFit(std::size_t inputs, std::size_t targets)
    : inputs_(inputs), targets_(targets), xtx_(inputs * inputs), xty_(targets * inputs) {}

void RidgeFit::add(const std::vector<double>& x, const std::vector<double>& y) {
  for (std::size_t i = 0; i < inputs_; ++i) {
    if (x[i] == 0) continue;
    for (std::size_t j = 0; j < inputs_; ++j) xtx_[i * inputs_ + j] += x[i] * x[j];
    for (std::size_t t = 0; t < targets_; ++t) xty_[t * inputs_ + i] += x[i] * y[t];
  }
}

void RidgeFit::merge(const RidgeFit& other) {
  for (std::size_t i = 0; i < xtx_.size(); ++i) xtx_[i] += other.xtx_[i];
  for (std::size_t i = 0; i < xty_.size(); ++i) xty_[i] += other.xty_[i];
}

bool RidgeFit::solve(const std::vector<double>& penalty,
                     std::vector<std::vector<double>>* weights) const {
  const std::size_t n = inputs_;
  // Cholesky: A = L L', A = X'X + diag(penalty).
  std::vector<double> l(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double sum = xtx_[i * n + j] + (i == j ? penalty[i] : 0.0);
      for (std::size_t k = 0; k < j; ++k) sum -= l[i * n + k] * l[j * n + k];
      if (i == j) {
        if (!(sum > 1e-12)) return false;
        l[i * n + i] = std::sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j];
      }
    }
  }
  weights->assign(targets_, std::vector<double>(n, 0.0));
  std::vector<double> z(n);
  for (std::size_t t = 0; t < targets_; ++t) {
    for (std::size_t i = 0; i < n; ++i) {  // L z = X'y
      double sum = xty_[t * n + i];
      for (std::size_t k = 0; k < i; ++k) sum -= l[i * n + k] * z[k];
      z[i] = sum / l[i * n + i];
    }
    auto& w = (*weights)[t];
    for (std::size_t i = n; i-- > 0;) {  // L' w = z
      double sum = z[i];
      for (std::size_t k = i + 1; k < n; ++k) sum -= l[k * n + i] * w[k];
      w[i] = sum / l[i * n + i];
    }
  }
  return true;
}

}  // namespace memos::router_policy
