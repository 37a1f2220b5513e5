// index_set.cpp — IndexSet's collections: opening them, rebuilding them
// from the store, whether a cube can be searched, what each retriever
// holds, snapshots. The change path (the writer to the indexer thread to
// the retrievers) is in index_set_changes.cpp.
#include "kernel/index_set.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

namespace memos::kernel {

IndexSet::Retrievers IndexSet::used_by(SearchMode mode) {
  switch (mode) {
    case SearchMode::dense:
      return kDenseBit;
    case SearchMode::lexical:
      return kLexicalBit;
    case SearchMode::hybrid:
      return kAllRetrievers;
  }
  return kAllRetrievers;
}

Status IndexSet::open(const store::Cube& cube) {
  for (const PluginRetriever* r : storing()) {
    CollectionState state;
    if (Status s = r->open(cube.id, cube.dimension, cube.language, &state); !s.ok()) return s;
  }
  std::lock_guard lock(mutex_);
  cubes_[cube.id] = {};
  return {};
}

void IndexSet::note_changes(store::CubeId cube, std::size_t count, Retrievers failed) {
  std::lock_guard lock(mutex_);
  auto& state = cubes_[cube];
  state.unsaved += count;
  state.poisoned |= failed;
}

void IndexSet::set_unbuilt_locked(store::CubeId cube, std::string why, Retrievers retrievers) {
  Unbuilt& u = unbuilt_[cube];
  u.retrievers |= retrievers;
  u.retry_after = {};
  if (u.why.empty()) u.why = std::move(why);
  unbuilt_count_.store(unbuilt_.size(), std::memory_order_release);
}

void IndexSet::erase_unbuilt_locked(store::CubeId cube) {
  unbuilt_.erase(cube);
  unbuilt_count_.store(unbuilt_.size(), std::memory_order_release);
}

void IndexSet::note_restarts() {
  const auto retrievers = storing();
  for (std::size_t i = 0; i < kStoring; ++i) {
    const std::uint64_t now = retrievers[i]->incarnation();
    if (now == seen_[i].load(std::memory_order_acquire)) continue;
    std::size_t marked = 0;
    {
      std::lock_guard lock(mutex_);
      const std::string why = "the " + retrievers[i]->name() + " retriever's host died";
      for (const auto& [id, state] : cubes_) {
        set_unbuilt_locked(id, why, Retrievers{1} << i);
        ++marked;
      }
      // Only now: searches refuse on the changed incarnation until here.
      seen_[i].store(now, std::memory_order_release);
    }
    spdlog::warn("the {} retriever's host died: reopening the collections of {} cube(s)",
                 retrievers[i]->name(), marked);
  }
}

std::map<store::CubeId, IndexSet::Retrievers> IndexSet::unbuilt_in(
    const std::vector<store::CubeId>& cubes) const {
  std::map<store::CubeId, Retrievers> out;
  if (unbuilt_count_.load(std::memory_order_acquire) == 0) return out;
  std::lock_guard lock(mutex_);
  for (store::CubeId cube : cubes) {
    if (auto it = unbuilt_.find(cube); it != unbuilt_.end()) out[cube] = it->second.retrievers;
  }
  return out;
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
    std::size_t items = 0;
    Retrievers rebuilt = 0;
    Status restored = restore(*txn, cube, kAllRetrievers, &items, &rebuilt, progress);
    if (!restored.ok()) {
      // Serve what can be served; the cube's search waits for its indexes.
      spdlog::error(
          "cube {}: its indexes cannot be built ({}); searches of it are unavailable "
          "until they are, memosd retries",
          cube.name, restored.message);
      std::lock_guard lock(mutex_);
      set_unbuilt_locked(cube.id, restored.message, kAllRetrievers);
      continue;
    }
    *items_indexed += items;
    if (rebuilt != 0) ++*cubes_rebuilt;
  }
  return {};
}

Status IndexSet::restore(const store::ReadTxn& txn, const store::Cube& cube, Retrievers retrievers,
                         std::size_t* items, Retrievers* rebuilt,
                         const std::function<void(const std::string&)>& progress) {
  *items = 0;
  *rebuilt = 0;
  const auto all = storing();
  Retrievers stale = 0, behind = 0;
  std::array<std::uint64_t, kStoring> covered{};
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (!(retrievers >> i & 1u)) continue;
    CollectionState state;
    const auto opening = std::chrono::steady_clock::now();
    Status opened = all[i]->open(cube.id, cube.dimension, cube.language, &state);
    if (!opened.ok()) return opened;
    const auto took = std::chrono::steady_clock::now() - opening;
    // What a start spends where, for a large cube.
    if (took >= std::chrono::milliseconds(500)) {
      spdlog::info("cube {}: {} opened in {} ms ({})", cube.name, all[i]->name(),
                   std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                   state.detail);
    }
    covered[i] = state.version;
    if (state.version == cube.head_version) continue;
    // A snapshot a little behind (a crash, a stop cut short) needs only
    // what changed since; one that is empty, or ahead of the store (a
    // store restored from an older backup), cannot be trusted.
    const bool usable = state.version != 0 && state.version < cube.head_version;
    spdlog::info("cube {}: {} snapshot covers version {}, the store is at {}{}{}; {}", cube.name,
                 all[i]->name(), state.version, cube.head_version, state.detail.empty() ? "" : ": ",
                 state.detail, usable ? "catching up" : "rebuilding");
    (usable ? behind : stale) |= Retrievers{1} << i;
  }
  // Rather than rebuild, what another node shared (a node new to the
  // cluster, or one whose own snapshot is gone).
  if (stale != 0) adopt_shared(cube, &stale, &behind, &covered);
  if (behind != 0) {
    std::size_t sent = 0;
    Retrievers missed = 0;
    const auto catching = std::chrono::steady_clock::now();
    if (Status s = catch_up(txn, cube, behind, covered, &sent, &missed); !s.ok()) return s;
    spdlog::info("cube {}: caught up with {} changed item(s) in {} ms", cube.name, sent,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - catching)
                     .count());
    *items += sent;
    stale |= missed;
  }
  if (behind != 0 || stale == 0) {
    std::lock_guard lock(mutex_);
    CubeState& state = cubes_[cube.id];
    // Caught up: snapshot soon, so the next start has less to catch up.
    // What made a collection poisoned (a change it missed) was sent again.
    if (behind != 0) state.unsaved += 1;
    state.poisoned &= ~(behind & ~stale);
    if (stale == 0) return {};
  }
  if (progress) progress("rebuilding the indexes of cube " + cube.name);
  *rebuilt = stale;
  std::size_t built = 0;
  Status s = rebuild(txn, cube, stale, &built, progress);
  *items += built;
  return s;
}

Status IndexSet::catch_up(const store::ReadTxn& txn, const store::Cube& cube, Retrievers targets,
                          const std::array<std::uint64_t, kStoring>& covered, std::size_t* items,
                          Retrievers* missed) {
  *items = 0;
  *missed = 0;
  std::uint64_t oldest = cube.head_version;
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (targets >> i & 1u) oldest = std::min(oldest, covered[i]);
  }
  const LeftOut left_out = left_out_of(cube.id);
  std::vector<store::Item> batch;
  Status error;
  auto flush = [&] {
    // Each retriever gets what changed after its own snapshot: an index
    // replaces by id and a removal of an absent id is ignored, so sending
    // it all would converge too, at more cost.
    for (std::size_t i = 0; i < kStoring && error.ok(); ++i) {
      if (!(targets >> i & 1u)) continue;
      std::vector<store::Item> live;
      std::vector<std::uint64_t> removed;
      for (const store::Item& item : batch) {
        if (item.cube_version <= covered[i]) continue;
        if (item.deleted()) {
          removed.push_back(item.id);
        } else {
          live.push_back(item);
        }
      }
      if (!removed.empty()) error = storing()[i]->remove(cube.id, removed, 0);
      if (error.ok() && !live.empty()) error = send_live(cube, Retrievers{1} << i, live, left_out);
    }
    *items += batch.size();
    batch.clear();
  };
  store::Status read =
      txn.for_each_item_changed_after(cube.id, oldest, [&](const store::Item& item) {
        if (!error.ok()) return;
        batch.push_back(item);
        if (batch.size() == kSendBatch) flush();
      });
  if (!read.ok()) return Status::from(read);
  if (error.ok() && !batch.empty()) flush();
  for (std::size_t i = 0; i < kStoring && error.ok(); ++i) {
    if (!(targets >> i & 1u)) continue;
    const PluginRetriever& r = *storing()[i];
    error = r.index(cube.id, {}, cube.head_version);
    // An item purged since the snapshot left no head to say it went: a
    // count that disagrees with the store's sends the collection to a
    // rebuild rather than leave it answering with a purged item.
    CollectionState state;
    if (error.ok()) error = r.open(cube.id, cube.dimension, cube.language, &state);
    if (error.ok() && state.documents + left_out[i].size() != cube.live_items) {
      spdlog::info(
          "cube {}: {} holds {} documents after catching up, the store {} items; rebuilding",
          cube.name, r.name(), state.documents, cube.live_items);
      *missed |= Retrievers{1} << i;
    }
  }
  // A start that cannot index is unavailable, whatever the plugin said.
  if (!error.ok()) return Status::unavailable(error.message);
  return {};
}

Status IndexSet::searchable(store::CubeId cube, SearchMode mode) const {
  const Retrievers used = used_by(mode);
  const auto all = storing();
  // Why a retriever is not running (quarantined, restarting), for the
  // messages below; "" when all that `mode` uses run.
  auto health = [&] {
    std::string out;
    for (std::size_t i = 0; i < kStoring; ++i) {
      if (!(used >> i & 1u)) continue;
      if (std::string h = all[i]->health(); h != "running") out += "; " + all[i]->name() + ": " + h;
    }
    return out;
  };
  for (std::size_t i = 0; i < kStoring; ++i) {
    if ((used >> i & 1u) && all[i]->incarnation() != seen_[i].load(std::memory_order_acquire)) {
      return Status::unavailable("the " + all[i]->name() +
                                 " retriever's host died and memosd is reopening its "
                                 "collections: search again shortly" +
                                 health());
    }
  }
  if (unbuilt_count_.load(std::memory_order_acquire) == 0) return {};
  std::string why;
  {
    std::lock_guard lock(mutex_);
    auto it = unbuilt_.find(cube);
    if (it == unbuilt_.end() || (it->second.retrievers & used) == 0) return {};
    why = it->second.why;
  }
  return Status::unavailable("the cube's search indexes are not built (" + why +
                             "); memosd rebuilds them: search again later" + health());
}

bool IndexSet::has_unbuilt() const {
  const auto all = storing();
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (all[i]->incarnation() != seen_[i].load(std::memory_order_acquire)) return true;
  }
  if (unbuilt_count_.load(std::memory_order_acquire) == 0) return false;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  return std::any_of(unbuilt_.begin(), unbuilt_.end(),
                     [&](const auto& entry) { return entry.second.retry_after <= now; });
}

std::size_t IndexSet::retry_unbuilt(const store::Store& store) {
  note_restarts();
  std::map<store::CubeId, Retrievers> todo;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, u] : unbuilt_) {
      if (u.retry_after <= now) todo[id] = u.retrievers;
    }
  }
  if (todo.empty()) return 0;
  std::optional<store::ReadTxn> txn;
  std::vector<store::Cube> cubes;
  store::Status read = store.begin_read(&txn);
  if (read.ok()) read = txn->list_all_cubes(&cubes);
  if (!read.ok()) return 0;
  std::size_t built = 0;
  for (const auto& entry : todo) {
    // Not a structured binding: the lambdas below capture it (C++20 allows
    // that, clang 14 does not yet).
    const store::CubeId id = entry.first;
    const Retrievers retrievers = entry.second;
    auto cube = std::find_if(cubes.begin(), cubes.end(), [&](const auto& c) { return c.id == id; });
    if (cube == cubes.end()) {  // removed meanwhile
      std::lock_guard lock(mutex_);
      erase_unbuilt_locked(id);
      continue;
    }
    // Changes posted after this barrier are in this snapshot too: they are
    // sent again after the build, in commit order, which converges on the
    // head (an index replaces by id, a removal of an absent id is ignored).
    std::size_t items = 0;
    Retrievers rebuilt = 0;
    Status s = restore(*txn, *cube, retrievers, &items, &rebuilt, {});
    std::lock_guard lock(mutex_);
    auto it = unbuilt_.find(id);
    if (it == unbuilt_.end()) continue;
    if (!s.ok()) {
      it->second.why = s.message;
      it->second.retry_after = std::chrono::steady_clock::now() + kRetryAfterFailure;
      continue;
    }
    // A host that dies during this is marked by the next note_restarts().
    erase_unbuilt_locked(id);
    ++built;
    spdlog::info("cube {}: indexes {} ({} items sent); its searches are served again", cube->name,
                 rebuilt != 0 ? "rebuilt"
                 : items != 0 ? "reopened from their snapshots and caught up"
                              : "reopened from their snapshots",
                 items);
  }
  return built;
}

Status IndexSet::rebuild(const store::ReadTxn& txn, const store::Cube& cube, Retrievers retrievers,
                         std::size_t* items,
                         const std::function<void(const std::string&)>& progress) {
  *items = 0;
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (!(retrievers >> i & 1u)) continue;
    const PluginRetriever* r = storing()[i];
    CollectionState state;
    Status s = r->drop(cube.id);
    if (s.ok()) s = r->open(cube.id, cube.dimension, cube.language, &state, cube.live_items);
    if (!s.ok()) return s;
  }
  const LeftOut left_out = left_out_of(cube.id);
  std::vector<store::Item> batch;
  Status error;
  auto flush = [&] {
    error = send_live(cube, retrievers, batch, left_out);
    *items += batch.size();
    batch.clear();
    if (progress && *items % (5 * kSendBatch) == 0) {
      progress("rebuilding the indexes of cube " + cube.name + ": " + std::to_string(*items) +
               " of " + std::to_string(cube.live_items) + " items");
    }
  };
  store::Status read = txn.for_each_live_item(cube.id, [&](const store::Item& item) {
    if (!error.ok()) return;
    batch.push_back(item);
    if (batch.size() == kSendBatch) flush();
  });
  if (!read.ok()) return Status::from(read);
  if (error.ok() && !batch.empty()) flush();
  // The collections now cover the snapshot's head version. Only now: a
  // crash mid-build leaves collections that are not current.
  for (std::size_t i = 0; i < kStoring && error.ok(); ++i) {
    if (retrievers >> i & 1u) error = storing()[i]->index(cube.id, {}, cube.head_version);
  }
  // A start that cannot index is unavailable, whatever the plugin said.
  if (!error.ok()) return Status::unavailable(error.message);
  std::lock_guard lock(mutex_);
  // Freshly built: snapshot it soon, so the next start need not rebuild.
  CubeState& state = cubes_[cube.id];
  state.unsaved += 1;
  state.poisoned &= ~retrievers;
  return {};
}

IndexSet::LeftOut IndexSet::left_out_of(store::CubeId cube) const {
  LeftOut out;
  if (left_out_count_.load(std::memory_order_acquire) == 0) return out;
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (auto it = left_out_[i].find(cube); it != left_out_[i].end()) out[i] = it->second;
  }
  return out;
}

Status IndexSet::send_live(const store::Cube& cube, Retrievers targets,
                           std::span<const store::Item> batch, const LeftOut& left_out) {
  // Embedded (only a dense collection needs it): the items not left out of
  // the dense retriever; those the embedder fails on alone join them
  // (embed_or_leave_out).
  std::vector<std::vector<float>> vectors(batch.size());
  if (targets & kDenseBit) {
    std::vector<const store::Item*> to_embed;
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (left_out[0].contains(batch[i].id)) continue;
      to_embed.push_back(&batch[i]);
      at.push_back(i);
    }
    std::vector<std::vector<float>> embedded;
    if (Status s = embed_or_leave_out(cube.id, cube.name, cube.dimension, to_embed, &embedded);
        !s.ok())
      return s;
    for (std::size_t n = 0; n < at.size(); ++n) vectors[at[n]] = std::move(embedded[n]);
  }
  for (std::size_t i = 0; i < kStoring; ++i) {
    if (!(targets >> i & 1u)) continue;
    std::vector<IndexedItem> sent;
    for (std::size_t n = 0; n < batch.size(); ++n) {
      if (left_out[i].contains(batch[n].id)) continue;
      if (i == 0 && vectors[n].empty()) continue;  // the embedder failed on it
      sent.push_back({&batch[n], vectors[n], false});
    }
    if (Status s = index_or_leave_out(i, cube, sent); !s.ok()) return s;
  }
  return {};
}

Status IndexSet::index_or_leave_out(std::size_t which, const store::Cube& cube,
                                    std::span<const IndexedItem> items) {
  const PluginRetriever& r = *storing()[which];
  const std::uint64_t incarnation = r.incarnation();
  Status batch = r.index(cube.id, items, 0);
  if (batch.ok() || items.size() < 2 || r.incarnation() != incarnation) return batch;
  // The plugin refused the batch but is up: one bad item must not keep the
  // whole cube unsearchable. One at a time, leaving out what it refuses;
  // if it refuses every one, the fault is the plugin's (a full disk), not
  // the items'.
  std::vector<std::uint64_t> refused;
  Status last;
  for (const IndexedItem& item : items) {
    Status one = r.index(cube.id, std::span<const IndexedItem>(&item, 1), 0);
    if (r.incarnation() != incarnation) return one;
    if (!one.ok()) {
      refused.push_back(item.item->id);
      last = one;
    }
  }
  if (refused.size() == items.size()) return batch;
  std::lock_guard lock(mutex_);
  auto& left_out = left_out_[which][cube.id];
  for (std::uint64_t id : refused) {
    if (left_out.insert(id).second) {
      left_out_count_.fetch_add(1, std::memory_order_acq_rel);
      spdlog::error("cube {}: item {} is left out of the {} retriever until memosd restarts: {}",
                    cube.name, id, r.name(), last.message);
    }
  }
  return {};
}

std::string IndexSet::describe(const store::Cube& cube) const {
  {
    std::lock_guard lock(mutex_);
    if (auto it = unbuilt_.find(cube.id); it != unbuilt_.end()) {
      return "unbuilt (" + it->second.why + "), retried every few seconds";
    }
  }
  std::string out;
  const SearchMode names[] = {SearchMode::dense, SearchMode::lexical};  // storing()'s order
  std::array<std::size_t, kStoring> left_out{};
  if (left_out_count_.load(std::memory_order_acquire) != 0) {
    std::lock_guard lock(mutex_);
    for (std::size_t r = 0; r < kStoring; ++r) {
      if (auto it = left_out_[r].find(cube.id); it != left_out_[r].end())
        left_out[r] = it->second.size();
    }
  }
  std::size_t i = 0;
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
    if (left_out[i] != 0) {
      what += ", " + std::to_string(left_out[i]) +
              " item(s) left out (the plugin failed on them; see the log)";
    }
    out += std::string(to_string(names[i++])) + ": " + what;
  }
  return out;
}

std::size_t IndexSet::save_changed(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard saving(save_mutex_);
  struct Due {
    store::CubeId cube;
    Retrievers skip;
    std::uint64_t unsaved;
  };
  std::vector<Due> due;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, state] : cubes_) {
      // A poisoned or unbuilt collection's snapshot would hide what it
      // misses from the next start.
      Retrievers skip = state.poisoned;
      if (auto it = unbuilt_.find(id); it != unbuilt_.end()) skip |= it->second.retrievers;
      if (state.unsaved != 0 && skip != kAllRetrievers) {
        due.push_back({id, skip, state.unsaved});
        state.unsaved = 0;  // changes from here on count toward the next one
      }
    }
  }
  // Against a deadline, the snapshots that spare the next start the most.
  std::stable_sort(due.begin(), due.end(),
                   [](const Due& a, const Due& b) { return a.unsaved > b.unsaved; });
  std::size_t saved = 0;
  for (std::size_t n = 0; n < due.size(); ++n) {
    const auto [cube, skip, unsaved] = due[n];
    if (std::chrono::steady_clock::now() >= deadline) {
      std::lock_guard lock(mutex_);
      for (std::size_t m = n; m < due.size(); ++m) {
        if (auto it = cubes_.find(due[m].cube); it != cubes_.end())
          it->second.unsaved += due[m].unsaved;
      }
      spdlog::info("{} cube(s) not snapshot in time: the next start catches them up",
                   due.size() - n);
      break;
    }
    bool ok = true;
    for (std::size_t i = 0; i < kStoring; ++i) {
      if (skip >> i & 1u) continue;
      const PluginRetriever* r = storing()[i];
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
      if (auto it = cubes_.find(cube); it != cubes_.end()) it->second.unsaved += unsaved;
    }
  }
  return saved;
}

}  // namespace memos::kernel
