// index_set.h — the search indexes of all cubes and the embedders that feed
// them, keyed by cube id. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/cube_index.h"
#include "kernel/plugin_embedder.h"
#include "memcube/store.h"

namespace memos::kernel {

// The search attributes of an item's head version.
IndexedAttributes attributes_of(const store::Item& item);

class IndexSet {
 public:
  // The index of `cube`, created empty on first use.
  std::shared_ptr<CubeIndex> index_for(const store::Cube& cube);
  // The index of a cube by id, or null if it has none yet.
  std::shared_ptr<CubeIndex> find(store::CubeId cube);
  // Forgets a removed cube's index.
  void drop(store::CubeId cube);
  // The embedder plugin every cube uses (set once at start, before use).
  // Safe while searches run: a reload swaps the embedder under them.
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
  // Embeds one text for a cube of `dimension`. Returns "" or why not.
  std::string embed(std::string_view text, std::uint32_t dimension, std::vector<float>* out) const {
    return std::atomic_load(&embedder_)->embed(text, dimension, out);
  }

  // Rebuilds every index from the store. Errors: those of ReadTxn.
  store::Status rebuild(const store::Store& store, std::size_t* items_indexed);
  // Builds one cube's index afresh from a read snapshot (e.g. after an
  // import). Errors: those of ReadTxn.
  store::Status build(const store::ReadTxn& txn, const store::Cube& cube, std::size_t* items);

 private:
  mutable std::mutex mutex_;
  std::map<store::CubeId, std::shared_ptr<CubeIndex>> indexes_;
  std::shared_ptr<PluginEmbedder> embedder_;
  std::string model_;
};

}  // namespace memos::kernel
