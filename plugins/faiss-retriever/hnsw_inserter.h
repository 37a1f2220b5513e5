// hnsw_inserter.h — adds vectors to a FAISS HNSW graph with several
// threads, however few the vectors.
//
// IndexHNSW::add parallelises a level only when it adds more than 100
// vectors to it, and allocates and initialises one lock per vector already
// in the graph on every call. The merger wants the opposite: small batches
// (a batch holds the collection's exclusive lock, and searches wait for
// it) inserted by every thread it has. This does what IndexHNSW::add does
// (store the vectors, draw their levels, link them top level first with
// HNSW::add_with_locks, which locks each vertex it rewrites) for any batch
// with any number of threads, and keeps its locks from call to call. The
// graph is the one FAISS would build: write_index and search see no
// difference.
//
// The threads are its own, not an OpenMP team: the calling thread links
// vertices too, and waits at the end only for vertices a helper is
// linking. An OpenMP team waits at its barrier for every member, and on a
// busy 2-core host (memosd's writer and searches run beside the merger) a
// descheduled member stalled small batches: 2 threads inserted 3x slower
// than 1 (OpenMP barriers, batches of 8 into 20k; see README).
//
// Not thread-safe: one call at a time per graph, and nothing may search the
// graph during a call (DenseCollection's exclusive lock).
#pragma once

#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace memos::faiss_retriever {

class HnswInserter {
 public:
  HnswInserter() = default;
  // Stops and joins the helper threads.
  ~HnswInserter();
  HnswInserter(const HnswInserter&) = delete;
  HnswInserter& operator=(const HnswInserter&) = delete;

  // Appends `n` vectors (n * index.d floats at `x`) to `index` at positions
  // index.ntotal onwards, linking them on this thread and up to
  // `threads` - 1 helpers (started on first use; fewer if the system
  // refuses a thread). `index` must store its vectors in an IndexFlat
  // (IndexHNSWFlat).
  // Throws std::bad_alloc or faiss::FaissException. If it throws before
  // the vectors were stored, `index` is unchanged; after (out of memory
  // while linking), index.ntotal counts them and some may be unlinked or
  // partly linked: the caller must treat those positions as dead.
  void add(faiss::IndexHNSW& index, std::size_t n, const float* x, int threads);

 private:
  struct Job;
  // Links the job's unclaimed vertices until none is left. Any thread.
  static void work(Job& job);
  void run_helper();
  void start_helpers(std::size_t count);
  // Links job's vertices on this thread and the helpers; returns once
  // every one is linked and no helper still looks at `job`.
  void run(Job& job);
  // One OpenMP lock per graph vertex (add_with_locks takes a vertex's lock
  // while it rewrites its neighbour list; OpenMP locks work from any
  // thread). Grown geometrically, between calls, when none is held. A
  // std::vector because add_with_locks takes one: a larger one is built
  // beside it and moved in, never copied.
  void reserve_locks(std::size_t n);
  static void destroy(std::vector<omp_lock_t>& locks);

  std::vector<omp_lock_t> locks_;

  std::mutex mutex_;                  // guards the fields below
  std::condition_variable wake_;      // helpers: a job, or stopping_
  std::condition_variable finished_;  // the caller: a helper left its job
  Job* job_ = nullptr;
  std::uint64_t generation_ = 0;  // of job_; a helper takes each job once
  bool stopping_ = false;
  std::vector<std::thread> helpers_;  // joined by the destructor
};

}  // namespace memos::faiss_retriever
