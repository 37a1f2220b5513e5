// policy_weights.h — router-policy's weights file: what a trained router
// knows, as text a person can read and a review can diff
// (memos-plugin(7), "Routers"; written by bench-router-train).
//
//   memos-router-policy 1
//   note trained on LoCoMo dev (conv-26 conv-30 conv-41), 480 questions
//   embedder hash-v1 256          ("none 0": the router reads no embedding)
//   features words names time_words ...
//   route retrieve=low,temporal=low,expand=low,compress=low ms 0.24 tokens 406
//   quality 0.61 0.02 -0.01 ...   (bias, one per feature, one per dimension)
//   route ...                     (a route line, then its quality line, each route)
//
// A route's predicted quality (the evidence recall of the context it hands
// on) is `quality` dotted with [1, features..., embedding...]; its cost is
// the mean milliseconds and context tokens measured when it was trained.
// Blank lines and lines starting with '#' are skipped.
//
// Errors: parse_weights() refuses a file that is not exactly this, saying
// the line and why: unknown or repeated keywords, a route or feature named
// twice, a malformed route, numbers that are not finite or exceed 1e6, a
// quality line of the wrong length, and anything past the limits below (a
// weights file is input like any other, possibly hostile).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memos::router_policy {

inline constexpr std::size_t kMaxWeightsBytes = 16u << 20;
inline constexpr std::size_t kMaxRoutes = 256;
inline constexpr std::size_t kMaxFeatures = 256;
inline constexpr std::uint32_t kMaxDimension = 4096;
inline constexpr double kMaxMagnitude = 1e6;

// One route: its tiers as "module=tier" pairs, in the file's order.
struct RouteModel {
  std::string name;  // "retrieve=low,temporal=low,..."
  std::vector<std::pair<std::string, std::string>> tiers;
  double ms = 0;                // mean wall time when trained
  double tokens = 0;            // mean context tokens when trained
  std::vector<double> quality;  // 1 + features + dimension weights
};

struct PolicyWeights {
  std::string note;
  std::string embedder = "none";  // the embedder model the embedding came from
  std::uint32_t dimension = 0;    // 0: no embedding
  std::vector<std::string> features;
  std::vector<RouteModel> routes;

  std::size_t inputs() const { return 1 + features.size() + dimension; }
};

// Reads `text` into `out`. Returns "" or why it is refused ("line 7: ...").
std::string parse_weights(std::string_view text, PolicyWeights* out);

// Reads the file at `path`: at most kMaxWeightsBytes, a regular file that
// nobody but its owner may write (a writable weights file would let anyone
// steer every tenant's routing). Returns "" or why it is refused.
std::string read_weights_file(const std::string& path, PolicyWeights* out);

// The file's text for `weights` (parse_weights reads it back exactly, to
// the precision numbers are written at: 9 significant digits).
std::string format_weights(const PolicyWeights& weights);

// Splits "retrieve=low,temporal=mid" into its pairs; false if malformed
// (empty parts, a module named twice, characters beyond [a-z0-9_]).
bool split_route(std::string_view route, std::vector<std::pair<std::string, std::string>>* out);

}  // namespace memos::router_policy
