// ridge_fit.h — ridge regression of several targets on the same inputs,
// what bench-router-train fits router-policy's quality models with: one
// target per route, every route's recall observed for every question
// (each arm's reward is replayed, so the contextual bandit is trained with
// full information).
//
// add() accumulates X'X and X'y; solve() returns, for each target, the w
// minimising |Xw - y|^2 + sum_j penalty_j w_j^2 (Cholesky on X'X + P).
// Errors: solve() returns false when X'X + P is not positive definite
// (a zero penalty on an input that never varies).
#pragma once

#include <cstddef>
#include <vector>

namespace memos::router_policy {

class RidgeFit {
 public:
  RidgeFit(std::size_t inputs, std::size_t targets);

  // One observation: inputs `x` (inputs() long), one value per target.
  void add(const std::vector<double>& x, const std::vector<double>& y);
  // Adds another fit's observations (same shape).
  void merge(const RidgeFit& other);

  bool solve(const std::vector<double>& penalty, std::vector<std::vector<double>>* weights) const;

  std::size_t inputs() const { return inputs_; }
  std::size_t targets() const { return targets_; }

 private:
  std::size_t inputs_, targets_;
  std::vector<double> xtx_;  // inputs x inputs, row-major
  std::vector<double> xty_;  // targets x inputs
};

}  // namespace memos::router_policy
