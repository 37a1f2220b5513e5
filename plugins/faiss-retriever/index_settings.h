// index_settings.h — the tuning of a dense collection and the vocabulary its
// parts share (which FAISS index, what a hit is).
#pragma once

#include <cstddef>
#include <cstdint>

namespace memos::faiss_retriever {

// Which FAISS index holds a collection's vectors. Values are stored in
// snapshots: never renumber.
enum class IndexKind : std::uint32_t {
  exact = 0,  // IndexFlatIP: every search scans every vector
  hnsw = 1,   // IndexHNSWFlat (inner product): approximate, sublinear
};

const char* kind_name(IndexKind kind);

struct IndexSettings {
  // A collection holding more documents than this moves to HNSW (in the
  // background); one that shrinks below half of it goes back to exact at
  // its next rebuild. The gap keeps a collection near the threshold from
  // flapping between the two.
  std::size_t hnsw_threshold = 20000;
  int hnsw_m = 32;           // graph degree: memory and recall against build time
  int ef_construction = 64;  // build-time beam: graph quality against build time
  int ef_search = 64;        // search-time beam, raised to k when k is larger
  // Rebuild when tombstones exceed this share of the index: tombstones cost
  // memory and, under selective filters, HNSW recall.
  double tombstone_ratio = 0.25;
};

struct DenseHit {
  std::uint64_t id;
  float score;  // inner product with the query
};

}  // namespace memos::faiss_retriever
