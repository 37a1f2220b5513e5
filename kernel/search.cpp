#include "kernel/search.h"

#include <algorithm>
#include <future>
#include <map>
#include <unordered_map>

#include "kernel/scheduler/strength.h"

namespace memos::kernel {
namespace {

struct Listed {
  RankedHit hit;
  store::CubeId cube;
};

// One retriever's best `k` over every cube, best first. An embedder that
// fails makes the search unavailable (retryable): the text is fine.
Status ranked_list(const IndexSet& indexes, const PluginRetriever& retriever, bool dense,
                   const SearchQuery& q, std::uint32_t k, std::vector<Listed>* out) {
  out->clear();
  std::map<std::uint32_t, std::vector<float>> vectors;  // by dimension
  for (const auto& cube : q.cubes) {
    std::vector<float>* vector = nullptr;
    if (dense) {
      auto [it, fresh] = vectors.try_emplace(cube.dimension);
      if (fresh) {
        if (Status s = indexes.embed(q.text, cube.dimension, &it->second); !s.ok())
          return Status::unavailable(s.message);
      }
      vector = &it->second;
    }
    std::vector<RankedHit> hits;
    Status s = retriever.search(cube.id, dense ? "" : q.text,
                                vector ? std::span<const float>(*vector) : std::span<const float>(),
                                k, q.filter, &hits);
    if (!s.ok()) return s;
    for (const auto& h : hits) out->push_back({h, cube.id});
  }
  if (q.cubes.size() > 1) {
    std::stable_sort(out->begin(), out->end(),
                     [](const Listed& a, const Listed& b) { return a.hit.score > b.hit.score; });
    if (out->size() > k) out->resize(k);
  }
  return {};
}

SearchHit::Rank rank_in(const std::vector<Listed>& list, std::uint64_t id, SearchMode name) {
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].hit.id == id) return {name, static_cast<std::uint32_t>(i + 1), list[i].hit.score};
  }
  return {name, 0, 0};
}

}  // namespace

Status run_search(const IndexSet& indexes, const store::ReadTxn& txn, const SearchQuery& q,
                  std::vector<SearchHit>* hits) {
  hits->clear();
  for (const auto& cube : q.cubes) {
    if (Status s = indexes.searchable(cube.id, q.mode); !s.ok()) return s;
  }
  // A retriever whose host died during the search answered for a fresh host
  // that holds no collections: say so as the retryable state it is.
  auto failed = [&](Status s) {
    for (const auto& cube : q.cubes) {
      if (Status now = indexes.searchable(cube.id, q.mode); !now.ok()) return now;
    }
    return s.prefixed("search failed");
  };
  if (q.mode != SearchMode::hybrid) {
    bool dense = q.mode == SearchMode::dense;
    std::vector<Listed> list;
    Status s =
        ranked_list(indexes, dense ? indexes.dense() : indexes.lexical(), dense, q, q.k, &list);
    if (!s.ok()) return failed(s);
    for (std::size_t i = 0; i < list.size(); ++i) {
      hits->push_back({list[i].cube,
                       list[i].hit.id,
                       list[i].hit.score,
                       {{q.mode, static_cast<std::uint32_t>(i + 1), list[i].hit.score}}});
    }
    return {};
  }
  // Hybrid: both retrievers' candidates, fused.
  const std::uint32_t depth = std::max(q.k, q.depth);
  std::vector<Listed> dense, lexical;
  // The two lists are independent: the lexical one is ranked on a second
  // thread while this one embeds the query and ranks the dense one, so a
  // hybrid search costs the slower of the two rather than their sum.
  auto lexical_ranked = std::async(std::launch::async, [&] {
    return ranked_list(indexes, indexes.lexical(), false, q, depth, &lexical);
  });
  Status s = ranked_list(indexes, indexes.dense(), true, q, depth, &dense);
  Status lexical_status = lexical_ranked.get();
  if (s.ok()) s = lexical_status;
  if (!s.ok()) return failed(s);

  FuseInput input;
  input.k = q.k;
  input.now_ms = q.filter.now_ms;
  input.params = q.fusion;
  std::unordered_map<std::uint64_t, store::CubeId> cube_of;
  for (const auto* list : {&dense, &lexical}) {
    FuseInput::List l;
    l.name = to_string(list == &dense ? SearchMode::dense : SearchMode::lexical);
    l.weight = list == &dense ? q.dense_weight : q.lexical_weight;
    for (const auto& e : *list) {
      l.hits.push_back(e.hit);
      cube_of.emplace(e.hit.id, e.cube);
    }
    input.lists.push_back(std::move(l));
  }
  const bool weighting = q.fusion.recency_weight != 0 || q.fusion.importance_weight != 0 ||
                         q.fusion.retention_weight != 0;
  const bool mmr = q.fusion.mmr_lambda > 0 && q.fusion.mmr_lambda < 1;
  if (weighting || mmr) {
    std::vector<store::Item> items;
    std::vector<float> retentions;
    for (const auto& [id, cube] : cube_of) {
      store::Item item;
      if (!txn.get_item(cube, id, 0, &item).ok()) continue;  // changed since
      if (q.fusion.retention_weight != 0) {
        store::AccessStats stats;
        (void)txn.access_stats(cube, id, &stats);  // unreadable: as never recalled
        auto unit = q.retention_unit_s.find(cube);
        retentions.push_back(static_cast<float>(
            scheduler::retention(stats, item.created_at_ms, q.filter.now_ms,
                                 unit != q.retention_unit_s.end() ? unit->second : 86400)));
      }
      items.push_back(std::move(item));
    }
    std::vector<float> vectors;
    std::uint32_t dimension = q.cubes.front().dimension;
    bool same_dimension = std::all_of(q.cubes.begin(), q.cubes.end(), [&](const store::Cube& c) {
      return c.dimension == dimension;
    });
    if (mmr && same_dimension) {
      std::vector<std::string_view> texts;
      for (const auto& item : items) texts.push_back(item.text);
      if (s = indexes.embed(texts, dimension, &vectors); !s.ok())
        return Status::unavailable(s.message).prefixed("search failed");
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      FuseInput::Candidate c{items[i].id,
                             items[i].recorded_at_ms,
                             items[i].importance,
                             retentions.empty() ? 0.0f : retentions[i],
                             {}};
      if (!vectors.empty()) {
        c.vector.assign(vectors.begin() + static_cast<std::ptrdiff_t>(i * dimension),
                        vectors.begin() + static_cast<std::ptrdiff_t>((i + 1) * dimension));
      }
      input.candidates.push_back(std::move(c));
    }
  }
  std::vector<RankedHit> fused;
  if (s = indexes.fuser().fuse(input, &fused); !s.ok()) return s.prefixed("search failed");
  for (std::size_t i = 0; i < fused.size(); ++i) {
    auto it = cube_of.find(fused[i].id);
    if (it == cube_of.end()) {
      return Status::internal("search failed: fuser " + indexes.fuser().name() +
                              ": returned an unknown id");
    }
    hits->push_back({it->second,
                     fused[i].id,
                     fused[i].score,
                     {{SearchMode::hybrid, static_cast<std::uint32_t>(i + 1), fused[i].score},
                      rank_in(dense, fused[i].id, SearchMode::dense),
                      rank_in(lexical, fused[i].id, SearchMode::lexical)}});
  }
  return {};
}

std::optional<float> relevance(const SearchHit& hit, SearchMode mode) {
  if (mode != SearchMode::hybrid) return hit.score;
  for (const auto& rank : hit.ranks) {
    if (rank.retriever == SearchMode::dense && rank.rank != 0) return rank.score;
  }
  return std::nullopt;
}

void drop_below(float min_score, SearchMode mode, std::vector<SearchHit>* hits) {
  std::erase_if(*hits, [&](const SearchHit& hit) {
    std::optional<float> r = relevance(hit, mode);
    return !r || !(*r >= min_score);
  });
}

void set_search_defaults(const SearchConfig& sc, SearchQuery* q) {
  q->depth = sc.hybrid_depth;
  q->dense_weight = sc.dense_weight;
  q->lexical_weight = sc.lexical_weight;
  q->fusion.rrf_k = static_cast<float>(sc.rrf_k);
  q->fusion.recency_weight = sc.recency_weight;
  q->fusion.importance_weight = sc.importance_weight;
  q->fusion.recency_half_life_ms = std::int64_t{sc.recency_half_life_days} * 86'400'000;
  q->fusion.mmr_lambda = sc.mmr_lambda;
}

}  // namespace memos::kernel
