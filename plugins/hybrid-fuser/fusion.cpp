#include "plugins/hybrid-fuser/fusion.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace memos::fusion {
namespace {

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.empty() || a.size() != b.size()) return 0;
  double dot = 0;
  for (std::size_t i = 0; i < a.size(); ++i) dot += double{a[i]} * b[i];
  return static_cast<float>(dot);
}

}  // namespace

std::vector<Ranked> fuse(const std::vector<RankedList>& lists,
                         const std::vector<std::pair<std::uint64_t, Candidate>>& candidates,
                         const Options& o) {
  const float rrf_k = o.rrf_k > 0 ? o.rrf_k : 60;
  std::unordered_map<std::uint64_t, double> rrf;
  std::vector<std::uint64_t> order;  // first-seen order breaks ties stably
  double best_possible = 0;
  for (const auto& list : lists) {
    float weight = list.weight > 0 ? list.weight : 1;
    best_possible += weight / (rrf_k + 1);
    for (std::size_t rank = 0; rank < list.hits.size(); ++rank) {
      auto [it, fresh] = rrf.emplace(list.hits[rank].id, 0.0);
      if (fresh) order.push_back(list.hits[rank].id);
      it->second += weight / (rrf_k + static_cast<double>(rank + 1));
    }
  }
  std::unordered_map<std::uint64_t, const Candidate*> attrs;
  for (const auto& [id, c] : candidates) attrs.emplace(id, &c);
  static const Candidate kNone;
  auto attributes = [&](std::uint64_t id) -> const Candidate& {
    auto it = attrs.find(id);
    return it == attrs.end() ? kNone : *it->second;
  };
  const double half_life =
      static_cast<double>(o.recency_half_life_ms > 0 ? o.recency_half_life_ms : 30LL * 86'400'000);
  std::vector<Ranked> scored;
  scored.reserve(order.size());
  for (std::uint64_t id : order) {
    double score = best_possible > 0 ? rrf[id] / best_possible : 0;
    const Candidate& c = attributes(id);
    if (o.recency_weight != 0) {
      double age = std::max<double>(0, static_cast<double>(o.now_ms - c.recorded_at_ms));
      score += o.recency_weight * std::exp2(-age / half_life);
    }
    if (o.importance_weight != 0) score += o.importance_weight * c.importance;
    if (o.retention_weight != 0) score += o.retention_weight * c.retention;
    scored.push_back({id, static_cast<float>(score)});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  const std::size_t k = std::min<std::size_t>(o.k, scored.size());
  if (!(o.mmr_lambda > 0 && o.mmr_lambda < 1) || k < 2) {
    scored.resize(k);
    return scored;
  }
  // Greedy MMR over the fused candidates.
  std::vector<Ranked> picked;
  std::vector<bool> used(scored.size(), false);
  std::vector<float> closest(scored.size(), -1.0f);  // max cosine to the picked
  const float top = scored.front().score != 0 ? scored.front().score : 1;
  while (picked.size() < k) {
    std::size_t best = scored.size();
    double best_value = 0;
    for (std::size_t i = 0; i < scored.size(); ++i) {
      if (used[i]) continue;
      double redundancy = picked.empty() ? 0 : std::max(0.0f, closest[i]);
      double value = o.mmr_lambda * (scored[i].score / top) - (1 - o.mmr_lambda) * redundancy;
      if (best == scored.size() || value > best_value) {
        best = i;
        best_value = value;
      }
    }
    used[best] = true;
    picked.push_back(scored[best]);
    const auto& chosen = attributes(scored[best].id).vector;
    for (std::size_t i = 0; i < scored.size(); ++i) {
      if (!used[i])
        closest[i] = std::max(closest[i], cosine(chosen, attributes(scored[i].id).vector));
    }
  }
  return picked;
}

}  // namespace memos::fusion
