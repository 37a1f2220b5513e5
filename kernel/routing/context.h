// context.h — the context a routed search hands to a model: the compress
// module's tiers and the token count every tier's cost is measured in.
//
// Low hands the pieces on whole. Mid selects sentences to fit a token
// budget: each sentence is scored by the query words it holds (each word
// weighted by its rarity among the context's sentences) plus a small prior
// for the piece's rank, the best are taken while they fit, and each piece
// keeps its chosen sentences in their order; a piece none of whose
// sentences is chosen leaves the context. A budget that the whole context
// fits leaves it untouched. (High, the model's rewrite of each piece, is
// model_tiers.h.)
// Errors: none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "memcube/store_types.h"

namespace memos::kernel::routing {

struct ContextPiece {
  store::CubeId cube = 0;
  store::ItemId id = 0;
  std::string text;          // the memory's text, or the sentences kept of it
  std::uint32_t tokens = 0;  // estimate_tokens(text)
  // 0: a hit of the search; else the hit whose neighbouring turn it is.
  store::ItemId neighbour_of = 0;
};

// Tokens a model's BPE tokenizer makes of English text, estimated without
// one: a quarter of the bytes, rounded up (the usual ~4 bytes a token); 0
// for empty text. Costs are compared with it, not billed.
std::uint32_t estimate_tokens(std::string_view text);

// Compress Mid over `pieces` (most relevant first), in place: the pieces
// that keep a sentence, in their order, with `tokens` recomputed. The
// result's tokens total at most `budget` unless a single best sentence is
// larger (it is then the whole context: a context is never empty while a
// piece holds a sentence; pieces of blanks alone leave it).
void compress_extractive(std::string_view query, std::uint32_t budget,
                         std::vector<ContextPiece>* pieces);

}  // namespace memos::kernel::routing
