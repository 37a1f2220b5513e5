#include "kernel/routing/route_features.h"

#include <array>
#include <cmath>

#include "kernel/routing/time_window.h"
#include "kernel/routing/words.h"

namespace memos::kernel::routing {
namespace {

// The question's words as written: runs of letters, digits and apostrophes.
std::vector<std::string_view> raw_words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  auto part = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '\'' || static_cast<unsigned char>(c) >= 0x80;
  };
  while (i < text.size()) {
    while (i < text.size() && !part(text[i])) ++i;
    std::size_t start = i;
    while (i < text.size() && part(text[i])) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::string lower(std::string_view w) {
  std::string out(w);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

constexpr std::array<std::string_view, 15> kYesNo = {"is",   "are",   "was",   "were", "do",
                                                     "does", "did",   "has",   "have", "had",
                                                     "can",  "could", "would", "will", "should"};

bool asks_time(const std::vector<std::string>& words) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "when") return true;
    if (i + 1 == words.size()) break;
    const std::string& next = words[i + 1];
    if (words[i] == "how" && (next == "long" || next == "often")) return true;
    if (words[i] == "what" &&
        (next == "year" || next == "month" || next == "date" || next == "day" || next == "time"))
      return true;
  }
  return false;
}

}  // namespace

std::vector<NamedValue> route_features(std::string_view query, std::int64_t reference_ms,
                                       const std::vector<SearchHit>& low_hits, std::uint32_t k) {
  const std::vector<std::string_view> raw = raw_words(query);
  std::vector<std::string> words;
  for (auto w : raw) words.push_back(lower(w));
  std::size_t names = 0;
  for (std::size_t i = 1; i < raw.size(); ++i) names += (raw[i][0] >= 'A' && raw[i][0] <= 'Z');
  bool digits = false;
  for (char c : query) digits = digits || (c >= '0' && c <= '9');

  std::vector<NamedValue> out = {
      {"words", std::log1p(static_cast<float>(raw.size()))},
      {"content_words", std::log1p(static_cast<float>(content_words(query).size()))},
      {"names", std::log1p(static_cast<float>(names))},
      {"digits", digits ? 1.0f : 0.0f},
      {"time_window", read_time_window(query, reference_ms) ? 1.0f : 0.0f},
      {"time_question", asks_time(words) ? 1.0f : 0.0f},
  };
  const std::string first = words.empty() ? "" : words.front();
  for (std::string_view w : {"when", "who", "where", "what", "which", "how", "why"})
    out.push_back({"q_" + std::string(w), first == w ? 1.0f : 0.0f});
  bool yesno = false;
  for (auto w : kYesNo) yesno = yesno || first == w;
  out.push_back({"q_yesno", yesno ? 1.0f : 0.0f});

  const float best = low_hits.empty() ? 0.0f : std::max(low_hits.front().score, 0.0f);
  const float second = low_hits.size() > 1 ? std::max(low_hits[1].score, 0.0f) : 0.0f;
  const float last = low_hits.empty() ? 0.0f : std::max(low_hits.back().score, 0.0f);
  out.push_back({"low_top", std::log1p(best)});
  out.push_back({"low_margin", best > 0 ? (best - second) / best : 0.0f});
  out.push_back({"low_tail", best > 0 ? last / best : 0.0f});
  out.push_back(
      {"low_hits", k > 0 ? static_cast<float>(low_hits.size()) / static_cast<float>(k) : 0.0f});
  return out;
}

}  // namespace memos::kernel::routing
