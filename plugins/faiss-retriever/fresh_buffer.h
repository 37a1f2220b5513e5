// fresh_buffer.h — the documents of an HNSW collection that are not in its
// graph yet, searched exactly.
//
// Inserting into an HNSW graph costs milliseconds per vector, and memosd's
// writer waits for every index request. So new and replaced documents of an
// HNSW index land here first (a copy into flat arrays), every search scans
// them exactly beside the graph search, and DenseCollection's merger moves
// them into the graph in the background. Not thread-safe: DenseIndex (under
// DenseCollection's lock) owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "plugins/faiss-retriever/index_settings.h"
#include "plugins/retriever-common/filter.h"

namespace memos::faiss_retriever {

class FreshBuffer {
 public:
  explicit FreshBuffer(std::uint32_t dimension) : dimension_(dimension) {}

  std::size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }
  // Room for `more` documents, so the upserts that follow cannot fail
  // halfway through a request.
  void reserve(std::size_t more);

  // Adds `id`, or replaces its vector and attributes.
  void upsert(std::uint64_t id, const float* vector, retrieval::Attributes attributes);
  bool set_attributes(std::uint64_t id, retrieval::Attributes attributes);  // false if absent
  bool remove(std::uint64_t id);                                            // false if absent
  bool contains(std::uint64_t id) const { return positions_.count(id) != 0; }
  const float* vector_of(std::uint64_t id) const;  // valid until the next change
  const retrieval::Attributes* attributes_of(std::uint64_t id) const;

  // The k best documents `filter` admits, best first (ties: buffer order).
  std::vector<DenseHit> search(const float* query, std::size_t k,
                               const retrieval::FilterSpec& filter) const;

  // A copy of the last `n` documents (the merger's next batch; taking from
  // the end leaves nothing to shift), and their removal once merged.
  LiveDocuments tail(std::size_t n) const;
  void pop(std::size_t n);
  // Appends a copy of every document to `out`.
  void copy_to(LiveDocuments* out) const;
  // The documents in place, in buffer order (a save streams them): valid
  // until the next change.
  std::span<const std::uint64_t> ids() const { return ids_; }
  std::span<const float> vectors() const { return vectors_; }
  std::span<const retrieval::Attributes> attributes() const { return attributes_; }

 private:
  std::uint32_t dimension_;
  std::vector<std::uint64_t> ids_;
  std::vector<float> vectors_;  // ids_.size() * dimension_
  std::vector<retrieval::Attributes> attributes_;
  std::unordered_map<std::uint64_t, std::size_t> positions_;  // id -> index in ids_
};

}  // namespace memos::faiss_retriever
