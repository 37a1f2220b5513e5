// cube_index.h — the dense search index of one cube.
//
// An exact inner-product FAISS index (IndexIDMap2 over IndexFlatIP) keyed by
// item id, plus a tag posting list so that tag filters are applied inside the
// search (FAISS IDSelector), not after it. Derived data: rebuilt from LMDB at
// start, then kept current by the writer thread after each commit.
//
// Thread-safety: searches take a shared lock, changes an exclusive one.
#pragma once

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace memos::kernel {

// FAISS 1.7.3 names its id type faiss::Index::idx_t (later releases move it).
using FaissId = faiss::Index::idx_t;

struct IndexHit {
  std::uint64_t id;
  float score;
};

class CubeIndex {
 public:
  explicit CubeIndex(std::size_t dimension);
  CubeIndex(const CubeIndex&) = delete;
  CubeIndex& operator=(const CubeIndex&) = delete;

  std::size_t dimension() const { return dimension_; }
  std::size_t size() const;

  // Adds or replaces the vector and tags of `id`. `vector` has dimension() floats.
  void upsert(std::uint64_t id, std::span<const float> vector,
              const std::vector<std::string>& tags);
  void remove(std::uint64_t id);

  // The k best items by inner product, best first; when `all_tags` is not
  // empty only items carrying every one of those tags are considered.
  std::vector<IndexHit> search(std::span<const float> query, std::size_t k,
                               const std::vector<std::string>& all_tags) const;

 private:
  void remove_locked(std::uint64_t id);

  std::size_t dimension_;
  mutable std::shared_mutex mutex_;
  faiss::IndexFlatIP flat_;
  faiss::IndexIDMap2 index_;
  std::unordered_map<std::uint64_t, std::vector<std::string>> tags_of_;
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> items_with_tag_;
};

}  // namespace memos::kernel
