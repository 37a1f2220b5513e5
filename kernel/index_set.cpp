#include "kernel/index_set.h"

#include <optional>
#include <vector>

namespace memos::kernel {

IndexedAttributes attributes_of(const store::Item& item) {
  return {item.tags, item.state == store::State::archived, item.valid_from_ms, item.valid_to_ms,
          item.expires_at_ms};
}

std::shared_ptr<CubeIndex> IndexSet::index_for(const store::Cube& cube) {
  std::lock_guard lock(mutex_);
  auto& slot = indexes_[cube.id];
  if (!slot) slot = std::make_shared<CubeIndex>(cube.dimension);
  return slot;
}

std::shared_ptr<CubeIndex> IndexSet::find(store::CubeId cube) {
  std::lock_guard lock(mutex_);
  auto it = indexes_.find(cube);
  return it == indexes_.end() ? nullptr : it->second;
}

void IndexSet::drop(store::CubeId cube) {
  std::lock_guard lock(mutex_);
  indexes_.erase(cube);
}

std::shared_ptr<const embed::HashEmbedder> IndexSet::embedder(std::size_t dimension) {
  std::lock_guard lock(mutex_);
  auto& slot = embedders_[dimension];
  if (!slot) slot = std::make_shared<const embed::HashEmbedder>(dimension);
  return slot;
}

store::Status IndexSet::rebuild(const store::Store& store, std::size_t* items_indexed) {
  *items_indexed = 0;
  std::optional<store::ReadTxn> txn;
  store::Status s = store.begin_read(&txn);
  if (!s.ok()) return s;
  std::vector<store::Cube> cubes;
  if (s = txn->list_all_cubes(&cubes); !s.ok()) return s;
  for (const auto& cube : cubes) {
    std::size_t items = 0;
    if (s = build(*txn, cube, &items); !s.ok()) return s;
    *items_indexed += items;
  }
  return {};
}

store::Status IndexSet::build(const store::ReadTxn& txn, const store::Cube& cube,
                              std::size_t* items) {
  *items = 0;
  auto index = std::make_shared<CubeIndex>(cube.dimension);
  auto embed = embedder(cube.dimension);
  std::vector<float> vector(cube.dimension);
  store::Status s = txn.for_each_live_item(cube.id, [&](const store::Item& item) {
    embed->embed(item.text, vector);
    index->upsert(item.id, vector, attributes_of(item));
    ++*items;
  });
  if (!s.ok()) return s;
  std::lock_guard lock(mutex_);
  indexes_[cube.id] = std::move(index);
  return {};
}

}  // namespace memos::kernel
