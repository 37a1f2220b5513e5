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
  // Items go to the embedder in batches: one plugin call for many texts.
  constexpr std::size_t kBatch = 256;
  std::vector<store::Item> batch;
  std::string error;
  auto flush = [&] {
    std::vector<std::string_view> texts;
    for (const auto& item : batch) texts.push_back(item.text);
    std::vector<float> vectors;
    if (error = std::atomic_load(&embedder_)->embed(texts, cube.dimension, &vectors);
        !error.empty()) {
      return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      index->upsert(batch[i].id,
                    std::span<const float>(vectors.data() + i * cube.dimension, cube.dimension),
                    attributes_of(batch[i]));
    }
    *items += batch.size();
    batch.clear();
  };
  store::Status s = txn.for_each_live_item(cube.id, [&](const store::Item& item) {
    if (!error.empty()) return;
    batch.push_back(item);
    if (batch.size() == kBatch) flush();
  });
  if (!s.ok()) return s;
  if (error.empty() && !batch.empty()) flush();
  if (!error.empty()) return {store::Errc::unavailable, error};
  std::lock_guard lock(mutex_);
  indexes_[cube.id] = std::move(index);
  return {};
}

}  // namespace memos::kernel
