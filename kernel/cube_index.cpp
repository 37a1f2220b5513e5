#include "kernel/cube_index.h"

#include <faiss/impl/IDSelector.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <mutex>

namespace memos::kernel {
namespace {

bool restricted(const IndexedAttributes& a) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return a.archived || a.valid_to_ms != 0 || a.expires_at_ms != 0 || a.valid_from_ms > now;
}

}  // namespace

// Evaluated by FAISS for each stored vector, by internal position.
class CubeIndex::Selector final : public faiss::IDSelector {
 public:
  Selector(const CubeIndex& index, const SearchFilter& filter) : index_(index), filter_(filter) {}
  bool is_member(FaissId position) const override {
    auto id = static_cast<std::uint64_t>(index_.index_.id_map[static_cast<std::size_t>(position)]);
    auto it = index_.entries_.find(id);
    return it != index_.entries_.end() && index_.admits(it->second.attributes, filter_);
  }

 private:
  const CubeIndex& index_;
  const SearchFilter& filter_;
};

void use_blas_for_single_queries() {
  // FAISS answers fewer than distance_compute_blas_threshold queries (20 by
  // default) with its own loop, which Debian's generic x86-64 build does not
  // vectorise well; OpenBLAS picks AVX2 kernels at run time. memosd searches
  // one query at a time, so route those through BLAS too.
  faiss::distance_compute_blas_threshold = 1;
}

CubeIndex::CubeIndex(std::size_t dimension)
    : dimension_(dimension), flat_(static_cast<FaissId>(dimension)), index_(&flat_) {}

std::size_t CubeIndex::size() const {
  std::shared_lock lock(mutex_);
  return static_cast<std::size_t>(index_.ntotal);
}

void CubeIndex::upsert(std::uint64_t id, std::span<const float> vector,
                       IndexedAttributes attributes) {
  std::unique_lock lock(mutex_);
  remove_locked(id);
  auto fid = static_cast<FaissId>(id);
  index_.add_with_ids(1, vector.data(), &fid);
  bool limited = restricted(attributes);
  if (limited) ++restricted_;
  entries_.emplace(id, Entry{std::move(attributes), limited});
}

void CubeIndex::remove(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  remove_locked(id);
}

void CubeIndex::set_attributes(std::uint64_t id, IndexedAttributes attributes) {
  std::unique_lock lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.restricted) --restricted_;
  bool limited = restricted(attributes);
  if (limited) ++restricted_;
  it->second = Entry{std::move(attributes), limited};
}

void CubeIndex::remove_locked(std::uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.restricted) --restricted_;
  entries_.erase(it);
  // IndexFlat removal compacts the array: O(n) per delete. Fine at this
  // scale; the retriever plugins replace it with tombstones and rebuilds.
  auto fid = static_cast<FaissId>(id);
  faiss::IDSelectorArray one(1, &fid);
  index_.remove_ids(one);
}

bool CubeIndex::admits(const IndexedAttributes& a, const SearchFilter& f) const {
  if (a.archived && !f.include_archived) return false;
  if (a.expires_at_ms != 0 && a.expires_at_ms <= f.now_ms) return false;
  if (f.as_of_ms < a.valid_from_ms) return false;
  if (a.valid_to_ms != 0 && f.as_of_ms >= a.valid_to_ms) return false;
  return std::all_of(f.all_tags.begin(), f.all_tags.end(), [&](const std::string& t) {
    return std::find(a.tags.begin(), a.tags.end(), t) != a.tags.end();
  });
}

std::vector<IndexHit> CubeIndex::search(std::span<const float> query, std::size_t k,
                                        const SearchFilter& filter) const {
  // memosd runs searches side by side on its workers; OpenMP threads inside
  // one search would only compete with them. The setting is per thread.
  omp_set_num_threads(1);
  std::shared_lock lock(mutex_);
  std::vector<IndexHit> hits;
  if (index_.ntotal == 0 || k == 0) return hits;
  auto limit =
      static_cast<FaissId>(std::min<std::size_t>(k, static_cast<std::size_t>(index_.ntotal)));
  std::vector<float> scores(static_cast<std::size_t>(limit));
  std::vector<FaissId> positions(static_cast<std::size_t>(limit));
  bool needs_selector = !filter.all_tags.empty() || filter.explicit_as_of || restricted_ > 0;
  if (!needs_selector) {
    flat_.search(1, query.data(), limit, scores.data(), positions.data());
  } else {
    // FAISS 1.7.3's IndexIDMap refuses search parameters, so the selector
    // runs on the flat index, over internal positions.
    Selector selector(*this, filter);
    faiss::SearchParameters params;
    params.sel = &selector;
    flat_.search(1, query.data(), limit, scores.data(), positions.data(), &params);
  }
  for (std::size_t i = 0; i < positions.size(); ++i) {
    if (positions[i] < 0) break;
    hits.push_back(
        {static_cast<std::uint64_t>(index_.id_map[static_cast<std::size_t>(positions[i])]),
         scores[i]});
  }
  return hits;
}

}  // namespace memos::kernel
