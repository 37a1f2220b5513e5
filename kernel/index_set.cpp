#include "kernel/index_set.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <optional>
#include <vector>

namespace memos::kernel {

Status IndexSet::open(const store::Cube& cube) {
  for (const PluginRetriever* r : storing()) {
    CollectionState state;
    if (Status s = r->open(cube.id, cube.dimension, cube.language, &state); !s.ok()) return s;
  }
  std::lock_guard lock(mutex_);
  cubes_[cube.id] = {0, false};
  return {};
}

void IndexSet::note_changes(store::CubeId cube, std::size_t count, bool ok) {
  std::lock_guard lock(mutex_);
  auto& state = cubes_[cube];
  state.unsaved += count;
  if (!ok) state.poisoned = true;
}

bool IndexSet::is_unbuilt(store::CubeId cube) const {
  std::lock_guard lock(mutex_);
  return unbuilt_.contains(cube);
}

void IndexSet::apply(const store::Cube& cube, const store::Item& written,
                     std::span<const float> vector, const store::Item* superseded) {
  // An unbuilt cube's changes are in the store its rebuild reads.
  if (is_unbuilt(cube.id)) return;
  const std::uint64_t version = written.cube_version;
  if (written.deleted()) {
    pending_.push_back({cube.id, cube.name, true, version, written, {}, false});
    return;
  }
  pending_.push_back({cube.id, cube.name, false, version, written,
                      std::vector<float>(vector.begin(), vector.end()), false});
  if (superseded != nullptr)
    pending_.push_back({cube.id, cube.name, false, version, *superseded, {}, true});
}

void IndexSet::remove(store::CubeId cube, std::uint64_t item) {
  if (is_unbuilt(cube)) return;
  Pending p{cube, std::to_string(cube), true, 0, {}, {}, false};
  p.item.id = item;
  pending_.push_back(std::move(p));
}

void IndexSet::defer(std::function<void()> after_flush) {
  deferred_.push_back(std::move(after_flush));
}

void IndexSet::send_pending(const PluginRetriever& r,
                            const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                            std::vector<char>* ok) const {
  for (std::size_t run = 0; run < runs.size(); ++run) {
    auto [i, j] = runs[run];
    const Pending& first = pending_[i];
    std::uint64_t version = 0;
    for (std::size_t k = i; k < j; ++k) version = std::max(version, pending_[k].version);
    Status err;
    if (first.removal) {
      std::vector<std::uint64_t> ids;
      for (std::size_t k = i; k < j; ++k) ids.push_back(pending_[k].item.id);
      err = r.remove(first.cube, ids, version);
    } else {
      std::vector<IndexedItem> items;
      for (std::size_t k = i; k < j; ++k) {
        items.push_back({&pending_[k].item, pending_[k].vector, pending_[k].attributes_only});
      }
      err = r.index(first.cube, items, version);
    }
    if (!err.ok()) {
      // Committed, but not searchable through this retriever until the
      // next start rebuilds the cube: say so loudly.
      spdlog::error("indexing {} change(s) to cube {}: {}", j - i, first.cube_name, err.message);
      (*ok)[run] = 0;
    }
  }
}

void IndexSet::flush() {
  // Runs of changes to one cube of one kind go in one request each.
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0, j; i < pending_.size(); i = j) {
    for (j = i + 1; j < pending_.size() && pending_[j].cube == pending_[i].cube &&
                    pending_[j].removal == pending_[i].removal;
         ++j) {
    }
    runs.emplace_back(i, j);
  }
  if (!runs.empty()) {
    // The retrievers are independent: the lexical one indexes on a second
    // thread while the dense one does on this one, so a group costs the
    // slower of the two rather than their sum.
    std::vector<char> dense_ok(runs.size(), 1), lexical_ok(runs.size(), 1);
    auto lexical =
        std::async(std::launch::async, [&] { send_pending(*lexical_, runs, &lexical_ok); });
    send_pending(*dense_, runs, &dense_ok);
    lexical.get();
    for (std::size_t run = 0; run < runs.size(); ++run) {
      note_changes(pending_[runs[run].first].cube, runs[run].second - runs[run].first,
                   dense_ok[run] && lexical_ok[run]);
    }
  }
  pending_.clear();
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(deferred_);
  for (auto& callback : callbacks) callback();
}

void IndexSet::drop(store::CubeId cube) {
  {
    std::lock_guard lock(mutex_);
    unbuilt_.erase(cube);
  }
  // Changes still queued for it are moot.
  std::erase_if(pending_, [&](const Pending& p) { return p.cube == cube; });
  for (const PluginRetriever* r : storing()) {
    if (Status s = r->drop(cube); !s.ok()) spdlog::warn("{}", s.message);
  }
  std::lock_guard lock(mutex_);
  cubes_.erase(cube);
}

Status IndexSet::open_all(const store::Store& store, std::size_t* items_indexed,
                          std::size_t* cubes_rebuilt,
                          const std::function<void(const std::string&)>& progress) {
  *items_indexed = 0;
  *cubes_rebuilt = 0;
  std::optional<store::ReadTxn> txn;
  store::Status read = store.begin_read(&txn);
  std::vector<store::Cube> cubes;
  if (read.ok()) read = txn->list_all_cubes(&cubes);
  if (!read.ok()) return Status::from(read);
  for (const auto& cube : cubes) {
    bool current = true;
    Status opened;
    for (const PluginRetriever* r : storing()) {
      CollectionState state;
      if (opened = r->open(cube.id, cube.dimension, cube.language, &state); !opened.ok()) break;
      if (state.version != cube.head_version) {
        spdlog::info("cube {}: {} snapshot covers version {}, the store is at {}{}{}; rebuilding",
                     cube.name, r->name(), state.version, cube.head_version,
                     state.detail.empty() ? "" : ": ", state.detail);
        current = false;
      }
    }
    if (opened.ok() && current) {
      std::lock_guard lock(mutex_);
      cubes_[cube.id] = {0, false};
      continue;
    }
    std::size_t items = 0;
    if (progress) progress("rebuilding the indexes of cube " + cube.name);
    Status built = opened.ok() ? build(*txn, cube, &items, progress) : opened;
    if (!built.ok()) {
      // Serve what can be served; the cube's search waits for its indexes.
      spdlog::error(
          "cube {}: its indexes cannot be built ({}); searches of it are unavailable "
          "until they are, memosd retries",
          cube.name, built.message);
      std::lock_guard lock(mutex_);
      unbuilt_[cube.id] = built.message;
      continue;
    }
    *items_indexed += items;
    ++*cubes_rebuilt;
  }
  return {};
}

Status IndexSet::searchable(store::CubeId cube) const {
  std::lock_guard lock(mutex_);
  auto it = unbuilt_.find(cube);
  if (it == unbuilt_.end()) return {};
  return Status::unavailable("the cube's search indexes could not be built (" + it->second +
                             "); memosd retries: search again later");
}

std::size_t IndexSet::unbuilt_count() const {
  std::lock_guard lock(mutex_);
  return unbuilt_.size();
}

std::size_t IndexSet::retry_unbuilt(const store::Store& store) {
  std::vector<store::CubeId> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, why] : unbuilt_) ids.push_back(id);
  }
  if (ids.empty()) return 0;
  std::optional<store::ReadTxn> txn;
  std::vector<store::Cube> cubes;
  store::Status read = store.begin_read(&txn);
  if (read.ok()) read = txn->list_all_cubes(&cubes);
  if (!read.ok()) return 0;
  std::size_t built = 0;
  for (store::CubeId id : ids) {
    auto cube = std::find_if(cubes.begin(), cubes.end(), [&](const auto& c) { return c.id == id; });
    if (cube == cubes.end()) {  // removed meanwhile
      std::lock_guard lock(mutex_);
      unbuilt_.erase(id);
      continue;
    }
    // Changes queued for it are in this snapshot (the groups before this job
    // are committed): the build covers them.
    std::erase_if(pending_, [&](const Pending& p) { return p.cube == id; });
    std::size_t items = 0;
    Status s = build(*txn, *cube, &items);
    std::lock_guard lock(mutex_);
    if (!s.ok()) {
      unbuilt_[id] = s.message;
      continue;
    }
    unbuilt_.erase(id);
    ++built;
    spdlog::info("cube {}: indexes built ({} items); its searches are served again", cube->name,
                 items);
  }
  return built;
}

Status IndexSet::build(const store::ReadTxn& txn, const store::Cube& cube, std::size_t* items,
                       const std::function<void(const std::string&)>& progress) {
  *items = 0;
  for (const PluginRetriever* r : storing()) {
    CollectionState state;
    Status s = r->drop(cube.id);
    if (s.ok()) s = r->open(cube.id, cube.dimension, cube.language, &state, cube.live_items);
    if (!s.ok()) return s;
  }
  // Items go to the embedder and the retrievers in batches, large enough
  // for the dense retriever's parallel bulk insertion.
  constexpr std::size_t kBatch = 2048;
  std::vector<store::Item> batch;
  Status error;
  auto flush = [&] {
    std::vector<std::string_view> texts;
    for (const auto& item : batch) texts.push_back(item.text);
    std::vector<float> vectors;
    if (error = embed(texts, cube.dimension, &vectors); !error.ok()) return;
    std::vector<IndexedItem> indexed;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      indexed.push_back(
          {&batch[i], std::span<const float>(vectors.data() + i * cube.dimension, cube.dimension),
           false});
    }
    // Versions only reach the head at the end: a crash mid-build leaves a
    // collection that is not current.
    for (const PluginRetriever* r : storing()) {
      if (error = r->index(cube.id, indexed, 0); !error.ok()) return;
    }
    *items += batch.size();
    batch.clear();
    if (progress && *items % 10240 == 0) {
      progress("rebuilding the indexes of cube " + cube.name + ": " + std::to_string(*items) +
               " of " + std::to_string(cube.live_items) + " items");
    }
  };
  store::Status read = txn.for_each_live_item(cube.id, [&](const store::Item& item) {
    if (!error.ok()) return;
    batch.push_back(item);
    if (batch.size() == kBatch) flush();
  });
  if (!read.ok()) return Status::from(read);
  if (error.ok() && !batch.empty()) flush();
  // The collection now covers the snapshot's head version.
  for (const PluginRetriever* r : storing()) {
    if (!error.ok()) break;
    error = r->index(cube.id, {}, cube.head_version);
  }
  // A start that cannot index is unavailable, whatever the plugin said.
  if (!error.ok()) return Status::unavailable(error.message);
  std::lock_guard lock(mutex_);
  // Freshly built: snapshot it soon, so the next start need not rebuild.
  cubes_[cube.id] = {1, false};
  return {};
}

std::string IndexSet::describe(const store::Cube& cube) const {
  {
    std::lock_guard lock(mutex_);
    if (auto it = unbuilt_.find(cube.id); it != unbuilt_.end()) {
      return "unbuilt (" + it->second + "), retried every few seconds";
    }
  }
  std::string out;
  const SearchMode names[] = {SearchMode::dense, SearchMode::lexical};  // storing()'s order
  int i = 0;
  for (const PluginRetriever* r : storing()) {
    CollectionState state;  // opening an open collection reports its state
    Status s = r->open(cube.id, cube.dimension, cube.language, &state);
    if (!out.empty()) out += "; ";
    std::string what = s.message;
    if (s.ok()) {
      what = state.detail;
      if (what.find("documents") == std::string::npos)
        what = std::to_string(state.documents) + " documents, " + what;
    }
    out += std::string(to_string(names[i++])) + ": " + what;
  }
  return out;
}

std::size_t IndexSet::save_changed() {
  std::lock_guard saving(save_mutex_);
  std::vector<store::CubeId> due;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, state] : cubes_) {
      if (state.unsaved != 0 && !state.poisoned) {
        due.push_back(id);
        state.unsaved = 0;  // changes from here on count toward the next one
      }
    }
  }
  std::size_t saved = 0;
  for (store::CubeId cube : due) {
    bool ok = true;
    for (const PluginRetriever* r : storing()) {
      CollectionState state;
      if (Status s = r->save(cube, &state); !s.ok()) {
        spdlog::warn("snapshot of cube {}: {}", cube, s.message);
        ok = false;
      }
    }
    if (ok) {
      ++saved;
    } else {
      std::lock_guard lock(mutex_);
      if (auto it = cubes_.find(cube); it != cubes_.end()) ++it->second.unsaved;
    }
  }
  return saved;
}

}  // namespace memos::kernel
