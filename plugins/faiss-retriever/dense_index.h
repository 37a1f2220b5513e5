// dense_index.h — one FAISS index and what search filters on, position by
// position. Not thread-safe: DenseCollection guards it.
//
// Documents live in slots, one per FAISS position. Neither index kind
// deletes in place here: IndexFlat would compact (renumbering every later
// position) and HNSW cannot delete at all, so a removed or replaced
// document leaves a tombstone that searches skip through an IDSelector,
// until a rebuild (DenseCollection) copies the live documents into a fresh
// index. The same IDSelector applies filters inside the FAISS search, so k
// hits come back whenever k documents qualify.
//
// An HNSW index takes new and replaced documents into its FreshBuffer, not
// its graph (a replaced document's graph slot is buried at once). Searches
// merge the buffer's exact hits with the graph's; merge_fresh() moves
// documents into the graph. A document is in the graph or in the buffer,
// never both.
#pragma once

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "plugins/faiss-retriever/fresh_buffer.h"
#include "plugins/faiss-retriever/hnsw_inserter.h"
#include "plugins/faiss-retriever/index_settings.h"
#include "plugins/faiss-retriever/snapshot_file.h"
#include "plugins/retriever-common/filter.h"

namespace memos::faiss_retriever {

// FAISS 1.7.3 names its id type faiss::Index::idx_t (later releases move it).
using FaissId = faiss::Index::idx_t;

class DenseIndex {
 public:
  DenseIndex(std::uint32_t dimension, IndexKind kind, const IndexSettings& settings);
  DenseIndex(const DenseIndex&) = delete;
  DenseIndex& operator=(const DenseIndex&) = delete;

  // A new index of `kind` holding `documents` (in its graph, not its
  // buffer), inserted with settings.merge_threads threads. Adds in chunks
  // and returns null early once `stop` is set. Throws what FAISS throws.
  static std::unique_ptr<DenseIndex> build(std::uint32_t dimension, IndexKind kind,
                                           const IndexSettings& settings, LiveDocuments documents,
                                           const std::atomic<bool>& stop);

  // The index a snapshot describes (which read_snapshot() has checked for
  // collection, dimension and checksum). Null with *why when its content is
  // inconsistent (duplicate ids, a FAISS index of another shape). The
  // vectors or the FAISS index are read straight from the snapshot's
  // mapping, which is unmapped on return.
  static std::unique_ptr<DenseIndex> from_snapshot(Snapshot snapshot, const IndexSettings& settings,
                                                   std::string* why);
  // Every field of a snapshot but collection and version, by reference:
  // valid until the next change (the caller holds the lock while it
  // writes the snapshot).
  SnapshotView snapshot_view() const;

  IndexKind kind() const { return kind_; }
  std::uint32_t dimension() const { return dimension_; }
  std::size_t documents() const { return positions_.size() + fresh_.size(); }
  std::size_t tombstones() const { return tombstones_; }
  // Documents waiting in the buffer for the graph (HNSW only).
  std::size_t fresh_documents() const { return fresh_.size(); }

  // Adds or replaces documents: exact, in the index; HNSW, in the buffer,
  // or straight into the graph when at least bulk_min come while the
  // buffer is empty (a bulk load). `vectors` holds ids.size() *
  // dimension() finite floats (the caller checks); a later duplicate id
  // wins. Throws what FAISS throws (std::bad_alloc).
  void upsert(std::span<const std::uint64_t> ids, std::span<const float> vectors,
              std::vector<retrieval::Attributes> attributes);
  // The same, except that an HNSW index buffers them however many they
  // are: a rebuild's catch-up, under the exclusive lock, must stay short
  // (documents written during a rebuild can number tens of thousands).
  void upsert_buffered(std::span<const std::uint64_t> ids, std::span<const float> vectors,
                       std::vector<retrieval::Attributes> attributes);
  // Moves up to `n` buffered documents into the graph, inserted with
  // settings.merge_threads threads; returns how many. Throws what FAISS
  // throws, and then the buffer still holds them (graph positions FAISS
  // took before failing are tombstones).
  std::size_t merge_fresh(std::size_t n);
  // Replaces what filters see of `id`, keeping its vector. False if absent.
  bool set_attributes(std::uint64_t id, retrieval::Attributes attributes);
  // False if absent.
  bool remove(std::uint64_t id);
  // The stored vector of `id` (dimension() floats), or null. Valid until
  // the next change.
  const float* vector_of(std::uint64_t id) const;
  const retrieval::Attributes* attributes_of(std::uint64_t id) const;

  // The k best documents `filter` admits, best first, scored by inner
  // product. On HNSW, falls back to an exact scan of the admitted documents
  // when the graph search comes back short (selective filters), and merges
  // in the buffer's exact hits (ties: graph first).
  std::vector<DenseHit> search(const float* query, std::size_t k,
                               const retrieval::FilterSpec& filter) const;

  // The kind a rebuild should produce now, or nothing if none is due.
  std::optional<IndexKind> rebuild_target() const;
  LiveDocuments live_documents() const;

 private:
  struct Slot {
    std::uint64_t id = 0;
    bool dead = false;
    bool restricted = false;  // counted in restricted_
    retrieval::Attributes attributes;
  };
  class Selector;

  // Adds to the FAISS index itself (graph or flat) and its slots. Graph
  // insertions use settings_.merge_threads threads. If FAISS throws after
  // taking some positions, they become tombstones.
  void insert(std::span<const std::uint64_t> ids, std::span<const float> vectors,
              std::vector<retrieval::Attributes> attributes);
  std::vector<DenseHit> search_index(const float* query, std::size_t k,
                                     const retrieval::FilterSpec& filter) const;
  void bury(std::size_t position);
  void note_attributes(Slot& slot);
  std::vector<DenseHit> collect(std::size_t k, const std::vector<float>& scores,
                                const std::vector<FaissId>& positions) const;
  // Whether more than `found` documents pass `selector` (stops early).
  bool admits_more_than(const Selector& selector, std::size_t found) const;
  std::vector<DenseHit> exact_search(const float* query, std::size_t k,
                                     const faiss::IDSelector* selector) const;

  std::uint32_t dimension_;
  IndexKind kind_;
  IndexSettings settings_;
  std::unique_ptr<faiss::Index> index_;
  // The vectors, by position: index_ itself (exact) or the HNSW storage.
  // Also the exact fallback for HNSW searches.
  faiss::IndexFlat* flat_ = nullptr;
  std::vector<Slot> slots_;
  std::unordered_map<std::uint64_t, std::size_t> positions_;  // live id -> slot
  std::size_t tombstones_ = 0;
  // Documents some default-looking filter could still exclude
  // (retrieval::is_restricted), and the latest valid_from seen. While
  // there are none, no tombstones, and the filter only holds default
  // conditions, a search needs no selector and runs at full FAISS speed.
  std::size_t restricted_ = 0;
  std::int64_t max_valid_from_ = 0;
  FreshBuffer fresh_;      // always empty on an exact index
  HnswInserter inserter_;  // unused by an exact index
};

}  // namespace memos::faiss_retriever
