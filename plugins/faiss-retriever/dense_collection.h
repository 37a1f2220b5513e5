// dense_collection.h — one cube's dense index, safe to use from many
// threads: searches share it, changes take it exclusively, and rebuilds run
// in the background.
//
// A rebuild (too many tombstones, or the collection outgrew the exact
// index) copies the live documents under the exclusive lock (a memcpy of
// the vectors), builds a fresh index from the copy on the collection's own
// thread while searches and changes go on against the current index, then
// takes the exclusive lock again to catch the fresh index up and swap it
// in. Catching up needs no log of operations: the ids changed meanwhile are
// remembered, and the current index (always up to date) says what each of
// them is now.
//
// An HNSW index takes new and replaced documents into an exact buffer
// (DenseIndex, FreshBuffer), so an index request costs a copy rather than
// graph insertions. The collection's merger thread moves them into the
// graph: it waits a moment for a batch to gather, then takes the
// exclusive lock for merge_batch documents per merge thread at a time
// (inserted in parallel, HnswInserter), so searches and writes get in
// between. When the buffer reaches fresh_limit, index
// requests wait for the merger instead of growing it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "plugins/faiss-retriever/dense_index.h"
#include "plugins/faiss-retriever/fair_shared_mutex.h"
#include "plugins/faiss-retriever/index_settings.h"
#include "plugins/retriever-common/filter.h"

namespace memos::faiss_retriever {

// One document of an index request.
struct DocumentChange {
  std::uint64_t id = 0;
  std::vector<float> vector;  // ignored when attributes_only
  retrieval::Attributes attributes;
  // Keep the stored vector, replace the attributes; ignored if id is absent.
  bool attributes_only = false;
};

// What open, save and index answer (plugin_wire::CollectionState).
struct CollectionState {
  std::uint64_t version = 0;    // the cube version the contents cover
  std::uint64_t documents = 0;  // live documents
  std::string detail;           // e.g. "hnsw, 3 tombstones"
};

struct CollectionStats {
  IndexKind kind = IndexKind::exact;
  std::size_t documents = 0;
  std::size_t tombstones = 0;
  std::size_t fresh = 0;  // documents waiting in the buffer for the graph
  std::uint64_t version = 0;
  bool rebuilding = false;
  std::size_t rebuilds = 0;   // completed since the collection was opened
  std::string rebuild_error;  // why the last rebuild failed, if it did
  std::string merge_error;    // why the last merge failed, if it did
};

class DenseCollection {
 public:
  // An empty collection. `dimension` is 1..kMaxDimension (the caller checks).
  DenseCollection(std::uint64_t id, std::uint32_t dimension, const IndexSettings& settings);
  // Stops a rebuild in progress and the merger, and waits for their threads.
  ~DenseCollection();
  DenseCollection(const DenseCollection&) = delete;
  DenseCollection& operator=(const DenseCollection&) = delete;

  static constexpr std::uint32_t kMaxDimension = 65536;

  // The collection as its snapshot in `state_dir` left it, or an empty one
  // if there is none to use; *detail says which ("loaded snapshot" or why
  // not). Never fails on bad snapshot content.
  // `expected_documents`: how many are about to be indexed (a rebuild from
  // the store); a collection that starts empty starts as HNSW when that is
  // above the threshold, so the bulk load goes straight into the graph.
  static std::unique_ptr<DenseCollection> open(std::uint64_t id, std::uint32_t dimension,
                                               const IndexSettings& settings,
                                               const std::string& state_dir, std::string* detail,
                                               std::uint64_t expected_documents = 0);

  std::uint64_t id() const { return id_; }
  std::uint32_t dimension() const { return dimension_; }

  // Applies `changes` in order and records `version` as covered (the
  // highest seen wins). Returns "" or why the request was refused (a vector
  // of the wrong length or with a non-finite value); then nothing changed.
  // Waits first while the buffer is at fresh_limit, unless `no_wait` (memosd
  // is stopping: the buffer may then grow past it, and a save keeps it).
  std::string index(std::vector<DocumentChange> changes, std::uint64_t version,
                    bool no_wait = false);
  // Removes `ids` (absent ones are ignored) and records `version`.
  void remove(std::span<const std::uint64_t> ids, std::uint64_t version);

  // The k best documents `filter` admits, best first. `query` has
  // dimension() finite floats (the caller checks: see check_vector).
  std::vector<DenseHit> search(std::span<const float> query, std::size_t k,
                               const retrieval::FilterSpec& filter) const;

  // "" or why `vector` cannot be indexed or searched here.
  std::string check_vector(std::span<const float> vector) const;

  // Writes the snapshot durably (snapshot_file.h). The file is written
  // from the index's memory into the page cache under the shared lock, so
  // it matches the version it records (searches go on, writers wait); the
  // fsyncs and the rename happen after the lock is released. Returns "" or
  // why; then the previous snapshot is untouched and no .tmp is left.
  std::string save(const std::string& state_dir, CollectionState* state);
  // Saves as save() does and makes `path` hold the snapshot file whole
  // (export_snapshot_file(): a hard link, else a copy), both under the save
  // lock, so that no other save replaces the file between the two. *state
  // is what the file holds. Returns "" or why (then `path` is as it was).
  std::string export_to(const std::string& state_dir, const std::string& path,
                        CollectionState* state);
  // Whether mark_dropped() was called: a failed save or export is then the
  // caller's mistake, not the disk's.
  bool dropped() const;
  // After this, save() refuses (a drop must not be undone by a save that
  // was in flight), and the rebuild and the merger stop: their work would
  // be thrown away. Searches and changes still work, on what is there.
  void mark_dropped();

  CollectionState state() const;
  CollectionStats stats() const;
  // Blocks until no rebuild is running (tests; an orderly shutdown).
  void wait_for_rebuild() const;
  // Has the merger merge without waiting for a batch to gather, and blocks
  // until the buffer is empty (or merging failed, or the collection
  // stopped). Tests; an orderly shutdown.
  void wait_for_merge();

 private:
  // Sets stopping_ and joins both threads; the destructor and
  // mark_dropped. Call without the lock.
  void stop();
  void after_change_locked();
  // After a change: has the merger (or, without one, this thread) move
  // buffered documents into the graph.
  void merge_later_locked();
  // Starts the merger if it is not running. False if it cannot run.
  bool start_merger_locked();
  void run_merger();
  // Blocks a writer while the buffer is full and the merger is emptying it.
  void wait_for_room(std::unique_lock<FairSharedMutex>& lock);
  void start_rebuild_locked(IndexKind kind);
  void run_rebuild(LiveDocuments documents, IndexKind kind);
  std::string describe_locked() const;
  // save() with save_mutex_ held.
  std::string save_locked(const std::string& state_dir, CollectionState* state);

  const std::uint64_t id_;
  const std::uint32_t dimension_;
  const IndexSettings settings_;

  mutable FairSharedMutex mutex_;  // guards everything below
  std::unique_ptr<DenseIndex> index_;
  std::uint64_t version_ = 0;
  bool rebuilding_ = false;
  std::unordered_set<std::uint64_t> touched_;  // ids changed during the rebuild
  std::size_t rebuilds_ = 0;
  std::string rebuild_error_;
  mutable std::condition_variable_any rebuilt_;
  std::string merge_error_;
  bool merger_started_ = false;   // merger_ was started (it runs until stop())
  bool flush_requested_ = false;  // wait_for_merge() is waiting
  // The buffer shrank or grew, a flush was asked for, or stopping_ was set:
  // the merger and writers waiting for room wait on it.
  std::condition_variable_any fresh_changed_;

  // Set under the lock (so waiters cannot miss it); read without it by a
  // rebuild in progress. After it is set, neither thread is started again.
  std::atomic<bool> stopping_{false};
  std::thread worker_;  // the last rebuild; joined before the next and at the end
  std::thread merger_;  // started with the first buffered document; runs until stop()

  mutable std::mutex save_mutex_;  // one save at a time per collection (one .tmp)
  bool dropped_ = false;           // guarded by save_mutex_
};

}  // namespace memos::faiss_retriever
