// index_set_sharing.cpp — IndexSet's side of index snapshots shared between
// nodes (index_sharing.h, docs/scale-out.md "Index snapshots"): taking a
// shared one instead of rebuilding, sharing this node's, and deferring the
// collections of a node that replays the log from far behind.
#include <spdlog/spdlog.h>

#include <filesystem>

#include "kernel/index_set.h"

namespace memos::kernel {
namespace {

std::uint64_t ms_since(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - start)
                                        .count());
}

// Removes a transfer file; one the plugin moved away is already gone.
void remove_file(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

// Why `s` cannot stand in for `cube`'s collection here ("" if it can).
std::string mismatch(const SharedSnapshot& s, const store::Cube& cube) {
  if (s.cube != cube.id) return "it is of cube " + std::to_string(s.cube);
  if (s.version == 0) return "it covers no version";
  if (s.version > cube.head_version) {
    return "it covers version " + std::to_string(s.version) + " and this node's store is at " +
           std::to_string(cube.head_version);
  }
  if (s.embedder != cube.embedder || s.dimension != cube.dimension) {
    return "it was made with embedder " + s.embedder + " of dimension " +
           std::to_string(s.dimension) + ", the cube's is " + cube.embedder + " of " +
           std::to_string(cube.dimension);
  }
  if (s.language != cube.language) return "it was made for language '" + s.language + "'";
  return "";
}

}  // namespace

void IndexSet::adopt_shared(const store::Cube& cube, Retrievers* stale, Retrievers* behind,
                            std::array<std::uint64_t, kStoring>* covered) {
  // An empty cube rebuilds in no time.
  if (cube.live_items == 0) return;
  std::shared_lock using_sharing(sharing_mutex_);
  if (sharing_ == nullptr) return;
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (!(*stale >> i & 1u)) continue;
    const std::uint64_t version = adopt_one(*sharing_, cube, i);
    if (version == 0) continue;
    (*covered)[i] = version;
    *stale &= ~(Retrievers{1} << i);
    if (version < cube.head_version) *behind |= Retrievers{1} << i;
  }
}

std::uint64_t IndexSet::adopt_one(SharedIndexes& shared, const store::Cube& cube,
                                  std::size_t which) {
  const PluginRetriever& r = *storing()[which];
  const std::string path = r.transfer_path(cube.id, "import");
  if (path.empty()) return 0;
  SharedSnapshot snapshot;
  const auto start = std::chrono::steady_clock::now();
  // Twice at most: a snapshot replaced while it was fetched is gone from
  // the bucket (not_found), and the key then names the newer one.
  Status s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    s = shared.find(cube.id, r.name(), &snapshot);
    if (s.code == Code::not_found) return 0;
    if (!s.ok()) {
      spdlog::info("cube {}: looking for a shared {} snapshot: {}", cube.name, r.name(), s.message);
      return 0;
    }
    if (std::string why = mismatch(snapshot, cube); !why.empty()) {
      spdlog::info("cube {}: not taking the {} snapshot node {} shared: {}", cube.name, r.name(),
                   snapshot.node, why);
      shared.count_import(false);
      return 0;
    }
    if (s = shared.fetch(snapshot, path); s.code != Code::not_found) break;
  }
  if (!s.ok()) {
    spdlog::warn("cube {}: fetching the {} snapshot node {} shared: {}", cube.name, r.name(),
                 snapshot.node, s.message);
    remove_file(path);
    return 0;
  }
  const std::uint64_t fetched_ms = ms_since(start);
  // The plugin takes a file only for a collection it does not hold open.
  CollectionState state;
  s = r.drop(cube.id);
  if (s.ok()) s = r.import_snapshot(cube.id, path, &state);
  remove_file(path);
  if (s.ok() && state.version != snapshot.version) {
    s = Status::internal("the file holds version " + std::to_string(state.version) + ", not " +
                         std::to_string(snapshot.version));
  }
  if (s.ok()) s = r.open(cube.id, cube.dimension, cube.language, &state);
  if (s.ok() && state.version != snapshot.version) {
    s = Status::internal("it opened at version " + std::to_string(state.version) + " (" +
                         state.detail + ")");
  }
  if (!s.ok()) {
    // The collection stays stale: restore() rebuilds it from the store.
    spdlog::warn("cube {}: the {} snapshot node {} shared was refused: {}", cube.name, r.name(),
                 snapshot.node, s.message);
    shared.count_import(false);
    return 0;
  }
  shared.count_import(true);
  spdlog::info(
      "cube {}: {} took the snapshot node {} shared (version {} of {}, {} documents, {} bytes "
      "fetched in {} ms, imported in {} ms)",
      cube.name, r.name(), snapshot.node, snapshot.version, cube.head_version, state.documents,
      snapshot.bytes, fetched_ms, ms_since(start) - fetched_ms);
  std::lock_guard lock(mutex_);
  cubes_[cube.id].shared[which] = snapshot.version;
  return snapshot.version;
}

std::size_t IndexSet::share(const std::vector<store::Cube>& cubes, std::uint64_t min_items,
                            const std::string& node) {
  std::shared_lock using_sharing(sharing_mutex_);
  if (sharing_ == nullptr) return 0;
  SharedIndexes& shared = *sharing_;
  std::size_t published = 0;
  for (const store::Cube& cube : cubes) {
    if (cube.live_items < std::max<std::uint64_t>(min_items, 1)) continue;
    Retrievers skip = 0;
    std::array<std::uint64_t, kStoring> last{};
    {
      std::lock_guard lock(mutex_);
      auto it = cubes_.find(cube.id);
      if (it == cubes_.end()) continue;  // not open here
      // A poisoned or unbuilt collection misses changes: sharing it would
      // hand what it misses to every node that takes it.
      skip = it->second.poisoned;
      if (auto u = unbuilt_.find(cube.id); u != unbuilt_.end()) skip |= u->second.retrievers;
      last = it->second.shared;
    }
    for (std::size_t i = 0; i < kStoring; ++i) {
      if (skip >> i & 1u) continue;
      // A tenth of the cube changed since: a node taking the older one
      // catches that up from its store, which is cheaper than the upload.
      if (last[i] != 0 && cube.head_version - std::min(last[i], cube.head_version) <
                              std::max<std::uint64_t>(cube.live_items / 10, 1)) {
        continue;
      }
      if (share_one(shared, cube, i, node)) ++published;
    }
  }
  return published;
}

bool IndexSet::share_one(SharedIndexes& shared, const store::Cube& cube, std::size_t which,
                         const std::string& node) {
  const PluginRetriever& r = *storing()[which];
  const std::string path = r.transfer_path(cube.id, "export");
  if (path.empty()) return false;
  // Another node (the shard's owner before a handover) may have shared it
  // at this version already.
  SharedSnapshot have;
  if (shared.find(cube.id, r.name(), &have).ok() && have.version >= cube.head_version &&
      mismatch(have, cube).empty()) {
    std::lock_guard lock(mutex_);
    if (auto it = cubes_.find(cube.id); it != cubes_.end()) it->second.shared[which] = have.version;
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  CollectionState state;
  Status s = r.export_snapshot(cube.id, path, &state);
  if (s.ok() && state.version == 0) s = Status::internal("the export covers no version");
  if (s.ok()) {
    SharedSnapshot snapshot;
    snapshot.cube = cube.id;
    snapshot.retriever = r.name();
    snapshot.version = state.version;
    snapshot.documents = state.documents;
    snapshot.embedder = cube.embedder;
    snapshot.dimension = cube.dimension;
    snapshot.language = cube.language;
    snapshot.node = node;
    s = shared.publish(std::move(snapshot), path);
  }
  remove_file(path);
  if (!s.ok()) {
    spdlog::warn("cube {}: sharing its {} snapshot: {}; tried again next time", cube.name, r.name(),
                 s.message);
    return false;
  }
  spdlog::info("cube {}: shared its {} snapshot (version {}, {} documents) in {} ms", cube.name,
               r.name(), state.version, state.documents, ms_since(start));
  std::lock_guard lock(mutex_);
  if (auto it = cubes_.find(cube.id); it != cubes_.end()) it->second.shared[which] = state.version;
  return true;
}

void IndexSet::start_deferring() {
  std::lock_guard lock(mutex_);
  deferring_ = true;
}

bool IndexSet::defer(store::CubeId cube, std::string why) {
  std::lock_guard lock(mutex_);
  if (!deferring_) return false;
  set_unbuilt_locked(cube, std::move(why), kAllRetrievers);
  unbuilt_[cube].retry_after = kDeferred;
  return true;
}

void IndexSet::release_deferred() {
  std::lock_guard lock(mutex_);
  deferring_ = false;
  for (auto& [id, u] : unbuilt_) {
    if (u.retry_after == kDeferred) u.retry_after = {};
  }
}

}  // namespace memos::kernel
