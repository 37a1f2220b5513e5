#include "kernel/routing/feedback_terms.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kernel/routing/words.h"

namespace memos::kernel::routing {

std::vector<std::string> feedback_terms(const FeedbackInput& in) {
  if (in.feedback.empty() || in.max_terms == 0) return {};
  std::set<std::string> asked;
  for (auto& w : content_words(in.query)) asked.insert(std::move(w));
  // Document frequency over the pool (each candidate counts a word once).
  std::map<std::string, std::size_t> df;
  for (std::string_view text : in.pool) {
    std::set<std::string> seen;
    for (auto& w : content_words(text)) seen.insert(std::move(w));
    for (const auto& w : seen) ++df[w];
  }
  const double n = static_cast<double>(std::max<std::size_t>(in.pool.size(), 1));
  struct Weight {
    double score = 0;
    std::size_t documents = 0;
  };
  std::map<std::string, Weight> weights;
  for (std::size_t rank = 0; rank < in.feedback.size(); ++rank) {
    std::vector<std::string> words = content_words(in.feedback[rank]);
    if (words.empty()) continue;
    std::map<std::string, std::size_t> tf;
    for (auto& w : words) ++tf[std::move(w)];
    const double discount = 1.0 / static_cast<double>(rank + 1);
    for (const auto& [w, count] : tf) {
      if (asked.contains(w)) continue;
      // A word absent from the pool (a pool that omits feedback) counts once.
      const double documents = static_cast<double>(std::max<std::size_t>(df[w], 1));
      if (in.pool.size() >= 4 && documents > n / 2) continue;
      Weight& weight = weights[w];
      weight.score += discount * static_cast<double>(count) / static_cast<double>(tf.size()) *
                      std::log(1 + n / documents);
      ++weight.documents;
    }
  }
  std::vector<std::pair<std::string, double>> ranked;
  for (auto& [w, weight] : weights) {
    if (weight.documents >= in.min_documents) ranked.emplace_back(w, weight.score);
  }
  // Best first; equal weights in word order, so the words are deterministic.
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ranked.size() && out.size() < in.max_terms; ++i)
    out.push_back(std::move(ranked[i].first));
  return out;
}

}  // namespace memos::kernel::routing
