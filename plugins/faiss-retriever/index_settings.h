// index_settings.h — the tuning of a dense collection and the vocabulary its
// parts share (which FAISS index, what a hit is).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "plugins/retriever-common/filter.h"

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
  // New and replaced documents of an HNSW collection wait in an exact
  // buffer (FreshBuffer) until the collection's merger has put them in the
  // graph. At this many, index requests wait for the merger (backpressure)
  // instead of growing the buffer, which every search scans. 0: no buffer,
  // requests insert into the graph themselves (the old, slow way).
  std::size_t fresh_limit = 2048;
  // An index request of at least this many documents into an HNSW graph
  // whose buffer is empty goes into the graph at once, with FAISS's
  // parallel insertion: a rebuild from the store or an import, which would
  // only wait for the merger through the buffer.
  std::size_t bulk_min = 1024;
  // Threads that insert into an HNSW graph: the merger's, a bulk load's
  // and a rebuild's. Searches stay single-threaded (memosd runs them side
  // by side). Default: one per core.
  int merge_threads = default_merge_threads();
  // How the merger works; not in the manifest (tests tune them). It waits
  // merge_delay for merge_after documents to gather, then moves them
  // merge_batch per thread at a time (merge_batch * merge_threads per
  // batch), releasing the lock between batches so searches and writes
  // interleave. A graph insertion costs 0.3 to 5 ms (256 dimensions, M 32,
  // idle to busy 2-core host), so a batch holds the lock about as long as
  // merge_batch insertions on one thread: 1 to 20 ms.
  std::size_t merge_after = 256;
  std::chrono::milliseconds merge_delay{50};
  std::size_t merge_batch = 4;

  static int default_merge_threads() {
    return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 64u));
  }
};

// Documents copied out of an index: for a rebuild, a merge batch.
struct LiveDocuments {
  std::vector<std::uint64_t> ids;
  std::vector<float> vectors;  // ids.size() * dimension
  std::vector<retrieval::Attributes> attributes;
};

struct DenseHit {
  std::uint64_t id;
  float score;  // inner product with the query
};

}  // namespace memos::faiss_retriever
