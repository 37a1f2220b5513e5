// cube_index.h — the dense search index of one cube.
//
// An exact inner-product FAISS index (IndexIDMap2 over IndexFlatIP) keyed by
// item id, with the attributes search filters on (tags, lifecycle, valid and
// expiry times) kept beside it. Filters are applied inside the FAISS search
// through an IDSelector, not after it, so k results come back whenever k
// items qualify. Derived data: rebuilt from LMDB at start, then kept current
// by the writer thread after each commit.
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
#include <vector>

namespace memos::kernel {

// FAISS 1.7.3 names its id type faiss::Index::idx_t (later releases move it).
using FaissId = faiss::Index::idx_t;

struct IndexHit {
  std::uint64_t id;
  float score;
};

// What search filters on, per item.
struct IndexedAttributes {
  std::vector<std::string> tags;
  bool archived = false;
  std::int64_t valid_from_ms = 0;
  std::int64_t valid_to_ms = 0;    // 0: open
  std::int64_t expires_at_ms = 0;  // 0: never
};

struct SearchFilter {
  std::vector<std::string> all_tags;  // items must carry every one
  std::int64_t as_of_ms = 0;          // facts valid at this time
  std::int64_t now_ms = 0;            // for expiry
  bool include_archived = false;
  bool explicit_as_of = false;  // as_of was asked for (not just "now")
};

// Call once at start, before searching (a FAISS-wide setting).
void use_blas_for_single_queries();

class CubeIndex {
 public:
  explicit CubeIndex(std::size_t dimension);
  CubeIndex(const CubeIndex&) = delete;
  CubeIndex& operator=(const CubeIndex&) = delete;

  std::size_t dimension() const { return dimension_; }
  std::size_t size() const;

  // Adds or replaces `id`. `vector` has dimension() floats.
  void upsert(std::uint64_t id, std::span<const float> vector, IndexedAttributes attributes);
  void remove(std::uint64_t id);
  // Changes what filters see of `id` (e.g. its validity closed by a
  // superseding fact); its vector stays. No effect if `id` is not indexed.
  void set_attributes(std::uint64_t id, IndexedAttributes attributes);

  // The k best items admitted by `filter`, best first.
  std::vector<IndexHit> search(std::span<const float> query, std::size_t k,
                               const SearchFilter& filter) const;

 private:
  class Selector;
  bool admits(const IndexedAttributes& a, const SearchFilter& f) const;
  void remove_locked(std::uint64_t id);

  std::size_t dimension_;
  mutable std::shared_mutex mutex_;
  faiss::IndexFlatIP flat_;
  faiss::IndexIDMap2 index_;
  struct Entry {
    IndexedAttributes attributes;
    bool restricted;  // counted in restricted_
  };
  std::unordered_map<std::uint64_t, Entry> entries_;
  // Items that some filter other than tags or an explicit as-of could
  // exclude (archived, closed or future validity, expiry, as judged when
  // they were indexed). While there are
  // none, a plain search needs no selector and runs at full FAISS speed.
  std::size_t restricted_ = 0;
};

}  // namespace memos::kernel
