#include "kernel/search.h"

#include <algorithm>
#include <future>
#include <map>
#include <unordered_map>

#include "kernel/routing/feedback_terms.h"
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

FuseInput::List as_fuse_list(const std::vector<Listed>& list, std::string name, float weight) {
  FuseInput::List l{std::move(name), weight, {}};
  l.hits.reserve(list.size());
  for (const auto& e : list) l.hits.push_back(e.hit);
  return l;
}

// The retrieve module's High tier: fuses `lists` once (rank only) for the
// best q.feedback.documents hits, reads the words they share, and ranks
// the query with those words added lexically. No words: `out` is empty.
Status feedback_list(const IndexSet& indexes, const SearchQuery& q,
                     const std::vector<FuseInput::List>& lists,
                     const std::unordered_map<std::uint64_t, store::Item>& items,
                     std::uint32_t depth, std::vector<Listed>* out, SearchNotes* notes) {
  out->clear();
  FuseInput first;
  first.k = q.feedback.documents;
  first.now_ms = q.filter.now_ms;
  first.params.rrf_k = q.fusion.rrf_k;  // relevance alone: no boosts, no MMR
  first.lists = lists;
  std::vector<RankedHit> best;
  if (Status s = indexes.fuser().fuse(first, &best); !s.ok()) return s;
  routing::FeedbackInput in;
  in.query = q.text;
  in.max_terms = q.feedback.terms;
  in.min_documents = q.feedback.min_documents;
  for (const auto& hit : best) {
    if (auto it = items.find(hit.id); it != items.end()) in.feedback.push_back(it->second.text);
  }
  for (const auto& [id, item] : items) in.pool.push_back(item.text);
  std::vector<std::string> terms = routing::feedback_terms(in);
  if (notes) notes->feedback_terms = terms;
  if (terms.empty()) return {};
  SearchQuery second = q;
  for (const auto& t : terms) second.text += " " + t;
  return ranked_list(indexes, indexes.lexical(), false, second, depth, out);
}

// The temporal module's Mid tier: the candidates whose valid-from time is
// in the window, ordered by their best rank in any list.
FuseInput::List window_list(const std::vector<FuseInput::List>& lists,
                            const std::unordered_map<std::uint64_t, store::Item>& items,
                            const SearchQuery::Window& window) {
  std::unordered_map<std::uint64_t, std::size_t> best;
  for (const auto& list : lists) {
    for (std::size_t rank = 0; rank < list.hits.size(); ++rank) {
      auto it = items.find(list.hits[rank].id);
      if (it == items.end()) continue;
      const std::int64_t t = it->second.valid_from_ms;
      if (t < window.from_ms || t >= window.to_ms) continue;
      auto [b, fresh] = best.emplace(list.hits[rank].id, rank);
      if (!fresh) b->second = std::min(b->second, rank);
    }
  }
  std::vector<std::pair<std::size_t, std::uint64_t>> order;
  for (const auto& [id, rank] : best) order.emplace_back(rank, id);
  std::sort(order.begin(), order.end());
  FuseInput::List l{"time window", window.weight, {}};
  for (std::size_t i = 0; i < order.size(); ++i)
    l.hits.push_back({order[i].second, static_cast<float>(order.size() - i)});
  return l;
}

}  // namespace

Status run_search(const IndexSet& indexes, const store::ReadTxn& txn, const SearchQuery& q,
                  std::vector<SearchHit>* hits, SearchNotes* notes) {
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
  // Routing's lists need a fusion even over one retriever's list.
  const bool routed = q.window || q.feedback.documents > 0;
  if (q.mode != SearchMode::hybrid && !routed) {
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
  // Hybrid (or routed): the retrievers' candidates, fused.
  const std::uint32_t depth = std::max(q.k, q.depth);
  const bool use_dense = q.mode != SearchMode::lexical, use_lexical = q.mode != SearchMode::dense;
  std::vector<Listed> dense, lexical;
  // The two lists are independent: the lexical one is ranked on a second
  // thread while this one embeds the query and ranks the dense one, so a
  // hybrid search costs the slower of the two rather than their sum.
  auto lexical_ranked = std::async(std::launch::async, [&] {
    return use_lexical ? ranked_list(indexes, indexes.lexical(), false, q, depth, &lexical)
                       : Status{};
  });
  Status s = use_dense ? ranked_list(indexes, indexes.dense(), true, q, depth, &dense) : Status{};
  Status lexical_status = lexical_ranked.get();
  if (s.ok()) s = lexical_status;
  if (!s.ok()) return failed(s);

  std::unordered_map<std::uint64_t, store::CubeId> cube_of;
  std::unordered_map<std::uint64_t, store::Item> items;  // read once, as needed
  auto note = [&](const std::vector<Listed>& list) {
    for (const auto& e : list) cube_of.emplace(e.hit.id, e.cube);
  };
  auto read_items = [&] {
    for (const auto& [id, cube] : cube_of) {
      if (items.contains(id)) continue;
      store::Item item;
      if (txn.get_item(cube, id, 0, &item).ok())
        items.emplace(id, std::move(item));  // else changed since
    }
  };
  note(dense);
  note(lexical);
  std::vector<FuseInput::List> lists;
  if (use_dense) lists.push_back(as_fuse_list(dense, "dense", q.dense_weight));
  if (use_lexical) lists.push_back(as_fuse_list(lexical, "lexical", q.lexical_weight));
  if (q.feedback.documents > 0) {
    read_items();
    std::vector<Listed> expanded;
    if (s = feedback_list(indexes, q, lists, items, depth, &expanded, notes); !s.ok())
      return failed(s);
    note(expanded);
    if (!expanded.empty()) lists.push_back(as_fuse_list(expanded, "feedback", q.feedback.weight));
  }
  if (q.window) {
    read_items();
    FuseInput::List in_window = window_list(lists, items, *q.window);
    if (notes) notes->in_window = in_window.hits.size();
    if (!in_window.hits.empty()) lists.push_back(std::move(in_window));
  }

  FuseInput input;
  input.k = q.k;
  input.now_ms = q.filter.now_ms;
  input.params = q.fusion;
  input.lists = std::move(lists);
  const bool weighting = q.fusion.recency_weight != 0 || q.fusion.importance_weight != 0 ||
                         q.fusion.retention_weight != 0;
  const bool mmr = q.fusion.mmr_lambda > 0 && q.fusion.mmr_lambda < 1;
  if (weighting || mmr) {
    read_items();
    std::vector<const store::Item*> read;
    std::vector<float> retentions;
    for (const auto& [id, cube] : cube_of) {
      auto it = items.find(id);
      if (it == items.end()) continue;
      const store::Item& item = it->second;
      if (q.fusion.retention_weight != 0) {
        store::AccessStats stats;
        (void)txn.access_stats(cube, id, &stats);  // unreadable: as never recalled
        auto unit = q.retention_unit_s.find(cube);
        retentions.push_back(static_cast<float>(
            scheduler::retention(stats, item.created_at_ms, q.filter.now_ms,
                                 unit != q.retention_unit_s.end() ? unit->second : 86400)));
      }
      read.push_back(&item);
    }
    std::vector<float> vectors;
    std::uint32_t dimension = q.cubes.front().dimension;
    bool same_dimension = std::all_of(q.cubes.begin(), q.cubes.end(), [&](const store::Cube& c) {
      return c.dimension == dimension;
    });
    if (mmr && same_dimension) {
      std::vector<std::string_view> texts;
      for (const auto* item : read) texts.push_back(item->text);
      if (s = indexes.embed(texts, dimension, &vectors); !s.ok())
        return Status::unavailable(s.message).prefixed("search failed");
    }
    for (std::size_t i = 0; i < read.size(); ++i) {
      FuseInput::Candidate c{read[i]->id,
                             read[i]->recorded_at_ms,
                             read[i]->importance,
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
    SearchHit hit{it->second,
                  fused[i].id,
                  fused[i].score,
                  {{SearchMode::hybrid, static_cast<std::uint32_t>(i + 1), fused[i].score}}};
    if (use_dense) hit.ranks.push_back(rank_in(dense, fused[i].id, SearchMode::dense));
    if (use_lexical) hit.ranks.push_back(rank_in(lexical, fused[i].id, SearchMode::lexical));
    hits->push_back(std::move(hit));
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
