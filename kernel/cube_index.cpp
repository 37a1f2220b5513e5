#include "kernel/cube_index.h"

#include <faiss/impl/IDSelector.h>

#include <algorithm>
#include <mutex>

namespace memos::kernel {

CubeIndex::CubeIndex(std::size_t dimension)
    : dimension_(dimension), flat_(static_cast<FaissId>(dimension)), index_(&flat_) {}

std::size_t CubeIndex::size() const {
  std::shared_lock lock(mutex_);
  return static_cast<std::size_t>(index_.ntotal);
}

void CubeIndex::upsert(std::uint64_t id, std::span<const float> vector,
                       const std::vector<std::string>& tags) {
  std::unique_lock lock(mutex_);
  remove_locked(id);
  auto fid = static_cast<FaissId>(id);
  index_.add_with_ids(1, vector.data(), &fid);
  if (!tags.empty()) {
    tags_of_[id] = tags;
    for (const auto& t : tags) items_with_tag_[t].insert(id);
  }
}

void CubeIndex::remove(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  remove_locked(id);
}

void CubeIndex::remove_locked(std::uint64_t id) {
  if (!index_.rev_map.contains(static_cast<FaissId>(id))) return;
  // IndexFlat removal compacts the array: O(n) per delete. Fine at this
  // scale; the retriever plugins replace it with tombstones and rebuilds.
  faiss::IDSelectorArray one(1, reinterpret_cast<const FaissId*>(&id));
  index_.remove_ids(one);
  if (auto it = tags_of_.find(id); it != tags_of_.end()) {
    for (const auto& t : it->second) {
      auto posting = items_with_tag_.find(t);
      if (posting == items_with_tag_.end()) continue;
      posting->second.erase(id);
      if (posting->second.empty()) items_with_tag_.erase(posting);
    }
    tags_of_.erase(it);
  }
}

std::vector<IndexHit> CubeIndex::search(std::span<const float> query, std::size_t k,
                                        const std::vector<std::string>& all_tags) const {
  std::shared_lock lock(mutex_);
  std::vector<IndexHit> hits;
  if (index_.ntotal == 0 || k == 0) return hits;

  std::vector<FaissId> allowed;
  if (!all_tags.empty()) {
    // Start from the rarest tag's posting list and keep ids carrying the rest.
    const std::unordered_set<std::uint64_t>* rarest = nullptr;
    for (const auto& t : all_tags) {
      auto it = items_with_tag_.find(t);
      if (it == items_with_tag_.end()) return hits;
      if (!rarest || it->second.size() < rarest->size()) rarest = &it->second;
    }
    for (std::uint64_t id : *rarest) {
      bool all = std::all_of(all_tags.begin(), all_tags.end(), [&](const std::string& t) {
        return items_with_tag_.at(t).contains(id);
      });
      if (all) allowed.push_back(static_cast<FaissId>(id));
    }
    if (allowed.empty()) return hits;
  }

  std::size_t candidates =
      all_tags.empty() ? static_cast<std::size_t>(index_.ntotal) : allowed.size();
  auto limit = static_cast<FaissId>(std::min(k, candidates));
  std::vector<float> scores(static_cast<std::size_t>(limit));
  std::vector<FaissId> labels(static_cast<std::size_t>(limit));
  if (all_tags.empty()) {
    flat_.search(1, query.data(), limit, scores.data(), labels.data());
  } else {
    // FAISS 1.7.3's IndexIDMap refuses search parameters, so the selector
    // runs on the flat index, over its internal positions.
    for (auto& id : allowed) id = index_.rev_map.at(id);
    faiss::IDSelectorBatch selector(allowed.size(), allowed.data());
    faiss::SearchParameters params;
    params.sel = &selector;
    flat_.search(1, query.data(), limit, scores.data(), labels.data(), &params);
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) break;
    hits.push_back({static_cast<std::uint64_t>(index_.id_map[static_cast<std::size_t>(labels[i])]),
                    scores[i]});
  }
  return hits;
}

}  // namespace memos::kernel
