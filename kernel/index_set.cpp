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
    auto index = index_for(cube);
    auto embed = embedder(cube.dimension);
    std::vector<float> vector(cube.dimension);
    s = txn->for_each_live_item(cube.id, [&](const store::Item& item) {
      embed->embed(item.text, vector);
      index->upsert(item.id, vector, attributes_of(item));
      ++*items_indexed;
    });
    if (!s.ok()) return s;
  }
  return {};
}

}  // namespace memos::kernel
