// index_set.h — the search side of every cube: the embedder that turns text
// into vectors and the retriever plugins (dense, lexical, hybrid) that hold
// one collection per cube.
//
// Collections are derived data (docs/design.md): every committed change is sent
// to each retriever in commit order (from the writer thread), tagged with
// the cube version it brings the collection to. Snapshots are written from
// time to time and at shutdown; at start a collection whose snapshot does
// not cover the cube's head version (missing, stale after a crash, torn,
// corrupt) is dropped and rebuilt from LMDB. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/plugin_embedder.h"
#include "kernel/plugin_retriever.h"
#include "memcube/store.h"

namespace memos::kernel {

class IndexSet {
 public:
  // The embedder plugin every cube uses (set at start, before use). Safe
  // while searches run: a reload swaps the embedder under them.
  void set_embedder(std::shared_ptr<PluginEmbedder> embedder, std::string model) {
    std::atomic_store(&embedder_, std::move(embedder));
    std::lock_guard lock(mutex_);
    model_ = std::move(model);
  }
  // The embedder's model name, recorded in each new cube's manifest.
  std::string embedder_model() const {
    std::lock_guard lock(mutex_);
    return model_;
  }
  // Embeds texts for a cube of `dimension`. Errors: PluginEmbedder::embed's.
  Status embed(std::string_view text, std::uint32_t dimension, std::vector<float>* out) const {
    return std::atomic_load(&embedder_)->embed(text, dimension, out);
  }
  Status embed(const std::vector<std::string_view>& texts, std::uint32_t dimension,
               std::vector<float>* out) const {
    return std::atomic_load(&embedder_)->embed(texts, dimension, out);
  }

  // The retrievers (set once at start, before use).
  void set_retrievers(std::shared_ptr<PluginRetriever> dense,
                      std::shared_ptr<PluginRetriever> lexical,
                      std::shared_ptr<PluginRetriever> fuser) {
    dense_ = std::move(dense);
    lexical_ = std::move(lexical);
    fuser_ = std::move(fuser);
  }
  const PluginRetriever& dense() const { return *dense_; }
  const PluginRetriever& lexical() const { return *lexical_; }
  const PluginRetriever& fuser() const { return *fuser_; }

  // Opens a new cube's collections. Errors: the first retriever's.
  Status open(const store::Cube& cube);
  // Queues a committed change: `written` (its embedding in `vector`, unused
  // for a tombstone) and, when it closed another fact, `superseded`.
  // Changes reach the retrievers at flush(), in commit order, batched: one
  // request per cube and retriever for a run of changes of one kind.
  void apply(const store::Cube& cube, const store::Item& written, std::span<const float> vector,
             const store::Item* superseded);
  // Queues the removal of items that expired (no new cube version).
  void remove(store::CubeId cube, std::uint64_t item);
  // Runs `after_flush` once the queued changes are indexed (a write's reply,
  // so that a search after it sees the write).
  void defer(std::function<void()> after_flush);
  // Sends the queued changes, then runs the deferred callbacks. Called on the
  // writer thread after each commit group.
  void flush();
  // Forgets a removed cube's collections and their snapshots.
  void drop(store::CubeId cube);

  // At start: opens every cube's collections and rebuilds those whose
  // snapshot does not cover the head version. A cube whose collections
  // cannot be opened or built (a full disk, a failing retriever) does not
  // stop the start: it is left unbuilt, logged, and searches of it are
  // unavailable until retry_unbuilt() builds it; reads and writes go on.
  // Errors: Status::from() of the store's (the cubes cannot be listed).
  // `progress` (optional) hears what is going on, at least every 10000
  // items rebuilt (memosd tells systemd, extending its start timeout).
  Status open_all(const store::Store& store, std::size_t* items_indexed, std::size_t* cubes_rebuilt,
                  const std::function<void(const std::string&)>& progress = {});
  // Whether `cube` can be searched. Errors: unavailable (retryable) for an
  // unbuilt cube, with why it could not be built.
  Status searchable(store::CubeId cube) const;
  // Cubes left unbuilt (open_all); 0 once every cube is built.
  std::size_t unbuilt_count() const;
  // Writer thread, between commit groups (a CommitQueue job's `done`): builds
  // each unbuilt cube afresh from the store; what still fails stays unbuilt.
  // Returns the number built.
  std::size_t retry_unbuilt(const store::Store& store);
  // Builds one cube's collections afresh from a read snapshot (after an
  // import). Same errors.
  Status build(const store::ReadTxn& txn, const store::Cube& cube, std::size_t* items,
               const std::function<void(const std::string&)>& progress = {});
  // What each retriever holds of a cube, for people ("dense: ...; lexical:
  // ..."), or why it could not say.
  std::string describe(const store::Cube& cube) const;
  // Snapshots every collection changed since its last snapshot. Returns the
  // number written; failures are logged and retried next time.
  std::size_t save_changed();

 private:
  struct CubeState {
    std::uint64_t unsaved = 0;  // changes since the last snapshot
    // A change could not be indexed: never snapshot, so the next start
    // rebuilds the cube from the store.
    bool poisoned = false;
  };
  std::vector<const PluginRetriever*> storing() const { return {dense_.get(), lexical_.get()}; }
  bool is_unbuilt(store::CubeId cube) const;
  // Counts `count` changes to `cube`; !ok: one of them was not indexed.
  void note_changes(store::CubeId cube, std::size_t count, bool ok);

  // A change waiting for flush() (only the writer thread touches these).
  struct Pending {
    store::CubeId cube = 0;
    std::string cube_name;
    bool removal = false;
    std::uint64_t version = 0;
    store::Item item;           // indexed, or the id removed
    std::vector<float> vector;  // empty for attribute-only changes
    bool attributes_only = false;
  };
  std::vector<Pending> pending_;
  // Sends runs [first, second) of pending_ to one retriever; clears ok[run]
  // for a run it could not index.
  void send_pending(const PluginRetriever& r,
                    const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                    std::vector<char>* ok) const;
  std::vector<std::function<void()>> deferred_;

  mutable std::mutex mutex_;
  std::mutex save_mutex_;  // one save_changed() at a time (timer vs shutdown)
  std::map<store::CubeId, CubeState> cubes_;
  std::map<store::CubeId, std::string> unbuilt_;  // why each could not be built
  std::shared_ptr<PluginEmbedder> embedder_;
  std::string model_;
  std::shared_ptr<PluginRetriever> dense_;
  std::shared_ptr<PluginRetriever> lexical_;
  std::shared_ptr<PluginRetriever> fuser_;
};

}  // namespace memos::kernel
