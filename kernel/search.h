// search.h — one search request over one or more cubes in one mode:
// dense (the embedder's vectors), lexical (BM25) or hybrid (both, fused).
//
// Filters run inside each retriever, so k results come back whenever k
// items qualify. Over several cubes each retriever's lists are merged by
// score before fusion (item ids are unique across cubes).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernel/config.h"
#include "kernel/index_set.h"
#include "kernel/status.h"
#include "memcube/store.h"
#include "memos/vocabulary.h"

namespace memos::kernel {

using memos::SearchMode;

struct SearchQuery {
  std::vector<store::Cube> cubes;  // already checked readable by the tenant
  std::string text;
  std::uint32_t k = 10;
  SearchMode mode = SearchMode::dense;
  RetrievalFilter filter;
  // Hybrid only.
  std::uint32_t depth = 50;  // candidates asked of each retriever
  float dense_weight = 1;
  float lexical_weight = 1;
  FusionParams fusion;
  // Routing (kernel/routing/routed_search.h), hybrid only. The retrieve
  // module's High tier: one more lexical list for the query plus the words
  // pseudo-relevance feedback finds in the first fusion's best
  // `feedback.documents` hits (0: none).
  struct Feedback {
    std::uint32_t documents = 0;
    std::uint32_t terms = 5;
    std::uint32_t min_documents = 1;
    float weight = 1;
  } feedback;
  // The temporal module's Mid tier: the candidates whose valid-from time
  // falls in [from_ms, to_ms) form one more list, weighted `weight`.
  struct Window {
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;
    float weight = 1;
  };
  std::optional<Window> window;
  // With fusion.retention_weight: each cube's owner's scheduler.time_unit
  // (the unit a memory's retention decays in); a cube not here: days.
  std::map<store::CubeId, std::uint64_t> retention_unit_s;
};

struct SearchHit {
  struct Rank {
    SearchMode retriever = SearchMode::dense;
    std::uint32_t rank = 0;  // 1-based place in that retriever's list; 0: not in it
    float score = 0;
  };
  store::CubeId cube = 0;
  std::uint64_t id = 0;
  float score = 0;
  std::vector<Rank> ranks;  // how each retriever ranked it (for --explain)
};

// What the routing lists of a search did, for --explain.
struct SearchNotes {
  std::vector<std::string> feedback_terms;  // the words the feedback pass added
  std::size_t in_window = 0;                // candidates in the time window
};

// Runs `query`. `txn` reads candidates' attributes for recency, importance
// and MMR. Errors ("search failed: ..."): unavailable, retryable, when the
// embedder fails or a plugin host restarts; internal for a retriever's or
// the fuser's own error.
Status run_search(const IndexSet& indexes, const store::ReadTxn& txn, const SearchQuery& query,
                  std::vector<SearchHit>* hits, SearchNotes* notes = nullptr);

// What a minimum score compares with: the hit's score in dense (cosine)
// and lexical (BM25) mode; in hybrid mode, whose fused score only orders
// the hits, the dense retriever's cosine of it (nullopt when the dense
// retriever did not rank it: it never passes).
std::optional<float> relevance(const SearchHit& hit, SearchMode mode);
// Drops the hits whose relevance is below `min_score` (finite), keeping
// the order of the rest.
void drop_below(float min_score, SearchMode mode, std::vector<SearchHit>* hits);

// Sets the hybrid depth, list weights and fusion parameters of `query` to
// the daemon's configured defaults.
void set_search_defaults(const SearchConfig& config, SearchQuery* query);

}  // namespace memos::kernel
