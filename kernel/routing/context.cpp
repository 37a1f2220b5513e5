#include "kernel/routing/context.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kernel/routing/words.h"

namespace memos::kernel::routing {
namespace {

std::uint32_t bytes_to_tokens(std::size_t bytes) {
  return static_cast<std::uint32_t>((bytes + 3) / 4);
}

struct Sentence {
  std::size_t piece;
  std::size_t begin, end;  // bytes of the piece's text
  std::uint32_t tokens;
  double score = 0;
  bool chosen = false;
};

// Sentences end after '.', '!' or '?' followed by a space, or at a line
// break; the text between is kept exactly (spacing included), trimmed.
void split_sentences(std::size_t piece, std::string_view text, std::vector<Sentence>* out) {
  std::size_t begin = 0;
  auto emit = [&](std::size_t end) {
    while (begin < end && (text[begin] == ' ' || text[begin] == '\n')) ++begin;
    std::size_t stop = end;
    while (stop > begin && (text[stop - 1] == ' ' || text[stop - 1] == '\n')) --stop;
    // A sentence costs its bytes and the space that joins it to the next
    // chosen one, so a piece's recomputed estimate never exceeds its
    // sentences' costs (ceil(a/4) + ceil(b/4) >= ceil((a+b)/4)).
    if (stop > begin) out->push_back({piece, begin, stop, bytes_to_tokens(stop - begin + 1)});
    begin = end;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool boundary = c == '\n' || ((c == '.' || c == '!' || c == '?') && i + 1 < text.size() &&
                                        text[i + 1] == ' ');
    if (boundary) emit(i + 1);
  }
  emit(text.size());
}

}  // namespace

std::uint32_t estimate_tokens(std::string_view text) {
  return bytes_to_tokens(text.size());
}

void compress_extractive(std::string_view query, std::uint32_t budget,
                         std::vector<ContextPiece>* pieces) {
  std::uint64_t total = 0;
  for (const auto& p : *pieces) total += p.tokens;
  if (total <= budget) return;
  std::vector<Sentence> sentences;
  for (std::size_t i = 0; i < pieces->size(); ++i)
    split_sentences(i, (*pieces)[i].text, &sentences);
  std::set<std::string> asked;
  for (auto& w : content_words(query)) asked.insert(std::move(w));
  // How many sentences hold each query word: a word every sentence holds
  // tells them apart no better than none.
  std::vector<std::set<std::string>> words(sentences.size());
  std::map<std::string, std::size_t> df;
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    const auto& s = sentences[i];
    for (auto& w : content_words(
             std::string_view((*pieces)[s.piece].text).substr(s.begin, s.end - s.begin))) {
      if (asked.contains(w)) words[i].insert(std::move(w));
    }
    for (const auto& w : words[i]) ++df[w];
  }
  const double n = static_cast<double>(sentences.size());
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    double score = 0;
    for (const auto& w : words[i]) score += std::log(1 + n / static_cast<double>(df[w]));
    // The retriever's order breaks ties and favours its best pieces: worth
    // a little less than one rare query word over the whole list.
    score += 0.5 / static_cast<double>(sentences[i].piece + 1);
    sentences[i].score = score;
  }
  std::vector<std::size_t> order(sentences.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return sentences[a].score > sentences[b].score;
  });
  std::uint64_t used = 0;
  for (std::size_t i : order) {
    if (used + sentences[i].tokens > budget && used != 0) continue;  // a smaller one may fit
    sentences[i].chosen = true;
    used += sentences[i].tokens;
  }
  std::vector<ContextPiece> kept;
  for (std::size_t p = 0; p < pieces->size(); ++p) {
    std::string text;
    for (const auto& s : sentences) {
      if (s.piece != p || !s.chosen) continue;
      if (!text.empty()) text += ' ';
      text += std::string_view((*pieces)[p].text).substr(s.begin, s.end - s.begin);
    }
    if (text.empty()) continue;
    ContextPiece piece = std::move((*pieces)[p]);
    piece.text = std::move(text);
    piece.tokens = estimate_tokens(piece.text);
    kept.push_back(std::move(piece));
  }
  *pieces = std::move(kept);
}

}  // namespace memos::kernel::routing
