// index_set.h — the search indexes of all cubes and the embedders that feed
// them, keyed by cube id. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kernel/cube_index.h"
#include "memcube/store.h"
#include "plugins/hash-embedder/hash_embedder.h"

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
  // The embedder for a dimension (one instance per dimension, shared).
  std::shared_ptr<const embed::HashEmbedder> embedder(std::size_t dimension);

  // Rebuilds every index from the store. Errors: those of ReadTxn.
  store::Status rebuild(const store::Store& store, std::size_t* items_indexed);
  // Builds one cube's index afresh from a read snapshot (e.g. after an
  // import). Errors: those of ReadTxn.
  store::Status build(const store::ReadTxn& txn, const store::Cube& cube, std::size_t* items);

 private:
  std::mutex mutex_;
  std::map<store::CubeId, std::shared_ptr<CubeIndex>> indexes_;
  std::map<std::size_t, std::shared_ptr<const embed::HashEmbedder>> embedders_;
};

}  // namespace memos::kernel
