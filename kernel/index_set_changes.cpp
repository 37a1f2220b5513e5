// index_set_changes.cpp — IndexSet's change path: the writer queues each
// committed change (apply, remove, drop) and hands each commit group's to
// the indexer thread (flush); the indexer embeds them and sends them to the
// retrievers in batches (process), leaving out what an embedder or a
// retriever fails on alone. The rest of IndexSet (opening, rebuilding,
// searchability, snapshots) is in index_set.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>
#include <vector>

#include "kernel/index_set.h"

namespace memos::kernel {

void IndexSet::start(std::size_t max_backlog, std::size_t max_backlog_bytes) {
  feed_ = std::make_unique<IndexFeed>([this](std::vector<IndexChange>& batch) { process(batch); },
                                      max_backlog, max_backlog_bytes);
}

void IndexSet::stop() {
  // What is left goes in without waiting for the retrievers' background
  // work (a dense merger at 1M documents takes under 1,000 a second): the
  // snapshots after this keep it buffered, and the next start merges it.
  stopping_.store(true, std::memory_order_release);
  if (feed_) feed_->stop();
}

std::uint64_t IndexSet::apply(const store::Cube& cube, const store::Item& written,
                              const store::Item* superseded) {
  using Kind = IndexChange::Kind;
  const std::uint64_t version = written.cube_version;
  pending_.push_back({written.deleted() ? Kind::remove : Kind::index, cube.id, cube.name,
                      cube.dimension, version, written});
  if (superseded != nullptr && !written.deleted()) {
    pending_.push_back(
        {Kind::attributes, cube.id, cube.name, cube.dimension, version, *superseded});
  }
  return feed_->accept();
}

void IndexSet::remove(store::CubeId cube, std::uint64_t item) {
  IndexChange c;
  c.kind = IndexChange::Kind::remove;
  c.cube = cube;
  c.cube_name = std::to_string(cube);
  c.item.id = item;
  pending_.push_back(std::move(c));
}

void IndexSet::flush() {
  if (!pending_.empty()) {
    std::vector<IndexChange> changes;
    changes.swap(pending_);
    feed_->post(std::move(changes));
  }
  feed_->wait_for_room();
}

void IndexSet::process(std::vector<IndexChange>& batch) {
  note_restarts();
  // A drop ends a segment: what came before it is indexed (or moot), what
  // comes after may be a new cube's changes.
  std::vector<IndexChange> segment;
  for (IndexChange& c : batch) {
    if (c.kind != IndexChange::Kind::drop) {
      segment.push_back(std::move(c));
      continue;
    }
    std::erase_if(segment, [&](const IndexChange& p) { return p.cube == c.cube; });
    index_batch(segment);
    segment.clear();
    drop_now(c.cube);
  }
  index_batch(segment);
}

void IndexSet::index_batch(std::vector<IndexChange>& batch) {
  if (batch.empty()) return;
  // Each cube's changes keep their order; different cubes' are independent,
  // so gathering them makes fewer, larger runs.
  std::stable_sort(batch.begin(), batch.end(),
                   [](const IndexChange& a, const IndexChange& b) { return a.cube < b.cube; });
  // Runs of changes to one cube of one kind (a removal or not) go in one
  // request each.
  auto removal = [](const IndexChange& c) { return c.kind == IndexChange::Kind::remove; };
  std::vector<std::pair<std::size_t, std::size_t>> runs;
  for (std::size_t i = 0, j; i < batch.size(); i = j) {
    for (j = i + 1; j < batch.size() && batch[j].cube == batch[i].cube &&
                    removal(batch[j]) == removal(batch[i]);
         ++j) {
    }
    runs.emplace_back(i, j);
  }
  std::vector<store::CubeId> cubes;
  for (auto [i, j] : runs) cubes.push_back(batch[i].cube);
  std::array<std::vector<Outcome>, kStoring> outcomes;
  for (auto& o : outcomes) o.assign(runs.size(), Outcome::indexed);
  std::vector<std::vector<float>> vectors(batch.size());
  // The retrievers are independent: the lexical one indexes on a second
  // thread while this one embeds and the dense one indexes, so a batch
  // costs the slower of the two rather than their sum.
  // Cubes unbuilt in a retriever are skipped there (their rebuild reads the
  // store). Looked up again for the dense side after embedding, which may
  // mark a cube unbuilt in it.
  const std::map<store::CubeId, Retrievers> unbuilt = unbuilt_in(cubes);
  const std::vector<std::vector<float>> no_vectors(batch.size());  // the lexical one's
  std::promise<void> lexical_done;
  std::future<void> lexical = lexical_done.get_future();
  lexical_lane_.post([&](bool) {
    send_runs(1, batch, no_vectors, runs, unbuilt, &outcomes[1]);
    lexical_done.set_value();
  });
  embed_runs(batch, runs, unbuilt, &vectors);
  send_runs(0, batch, vectors, runs, unbuilt_in(cubes), &outcomes[0]);
  lexical.wait();
  for (std::size_t run = 0; run < runs.size(); ++run) {
    Retrievers failed = 0;
    for (std::size_t r = 0; r < kStoring; ++r) {
      if (outcomes[r][run] == Outcome::failed || outcomes[r][run] == Outcome::killed_host)
        failed |= Retrievers{1} << r;
    }
    note_changes(cubes[run], runs[run].second - runs[run].first, failed);
  }
  note_left_out(batch, vectors, runs, outcomes);
}

void IndexSet::embed_runs(const std::vector<IndexChange>& batch,
                          const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                          const std::map<store::CubeId, Retrievers>& skip,
                          std::vector<std::vector<float>>* vectors) {
  for (auto [i, j] : runs) {
    const IndexChange& first = batch[i];
    // Unbuilt in the dense retriever: its rebuild embeds from the store.
    if (auto it = skip.find(first.cube); it != skip.end() && (it->second & kDenseBit)) continue;
    std::vector<const store::Item*> items;
    std::vector<std::size_t> at;
    for (std::size_t k = i; k < j; ++k) {
      if (batch[k].kind != IndexChange::Kind::index) continue;
      items.push_back(&batch[k].item);
      at.push_back(k);
    }
    if (items.empty()) continue;
    std::vector<std::vector<float>> embedded;
    if (Status s =
            embed_or_leave_out(first.cube, first.cube_name, first.dimension, items, &embedded);
        !s.ok()) {
      // Committed, but without vectors: the dense collection must not get a
      // wrong one. It is rebuilt from the store (embedding again) once the
      // embedder answers; its searches are unavailable until then.
      spdlog::error("cube {}: embedding {} change(s) failed: {}", first.cube_name, items.size(),
                    s.message);
      std::lock_guard lock(mutex_);
      set_unbuilt_locked(first.cube, "embedding failed: " + s.message, kDenseBit);
      unbuilt_[first.cube].retry_after = std::chrono::steady_clock::now() + kRetryAfterFailure;
      continue;
    }
    for (std::size_t n = 0; n < at.size(); ++n) (*vectors)[at[n]] = std::move(embedded[n]);
  }
}

Status IndexSet::embed_or_leave_out(store::CubeId cube, const std::string& cube_name,
                                    std::uint32_t dimension,
                                    const std::vector<const store::Item*>& items,
                                    std::vector<std::vector<float>>* vectors) {
  vectors->assign(items.size(), {});
  if (items.empty()) return {};
  auto split = [&](const std::vector<float>& flat, std::size_t n, std::vector<float>* out) {
    out->assign(flat.begin() + static_cast<std::ptrdiff_t>(n * dimension),
                flat.begin() + static_cast<std::ptrdiff_t>((n + 1) * dimension));
  };
  std::vector<std::string_view> texts;
  for (const store::Item* item : items) texts.push_back(item->text);
  const auto channel = std::atomic_load(&embedder_)->channel();
  const std::uint64_t faults = channel->plugin_faults();
  std::vector<float> flat;
  Status batch = embed(texts, dimension, &flat);
  if (batch.ok()) {
    for (std::size_t n = 0; n < items.size(); ++n) split(flat, n, &(*vectors)[n]);
    return {};
  }
  // One text that crashes, hangs or upsets the embedder must not keep the
  // cube's dense search down, nor be sent again and again until the
  // embedder is quarantined. A small batch that killed it is left out
  // whole, as the retrievers' runs are (a larger one is more likely an
  // outside kill); a batch it refused while staying up is tried one text
  // at a time. What it fails alone is left out of the dense retriever (it
  // stays in the lexical one). If it fails them all, or is not running
  // (restarting, quarantined), the fault is its own: nothing is left out.
  const bool killed = channel->plugin_faults() != faults;
  std::vector<std::size_t> refused;
  Status last = batch;
  if (killed ? items.size() > kMaxLeftOutRun : channel->health() != "running") return batch;
  if (killed || items.size() == 1) {
    for (std::size_t n = 0; n < items.size(); ++n) refused.push_back(n);
  } else {
    for (std::size_t n = 0; n < items.size(); ++n) {
      Status one = embed(texts[n], dimension, &flat);
      if (one.ok()) {
        (*vectors)[n] = std::move(flat);
        continue;
      }
      if (channel->health() != "running") return one;
      refused.push_back(n);
      last = one;
    }
    if (refused.size() == items.size()) return batch;
  }
  std::lock_guard lock(mutex_);
  auto& left_out = left_out_[0][cube];
  for (std::size_t n : refused) {
    if (left_out.insert(items[n]->id).second) {
      left_out_count_.fetch_add(1, std::memory_order_acq_rel);
      spdlog::error(
          "cube {}: item {} is left out of the dense retriever until memosd restarts: the "
          "embedder fails on its text ({})",
          cube_name, items[n]->id, last.message);
    }
  }
  return {};
}

void IndexSet::send_runs(std::size_t which, const std::vector<IndexChange>& batch,
                         const std::vector<std::vector<float>>& vectors,
                         const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                         const std::map<store::CubeId, Retrievers>& skip,
                         std::vector<Outcome>* outcomes) const {
  const PluginRetriever& r = *storing()[which];
  for (std::size_t run = 0; run < runs.size(); ++run) {
    auto [i, j] = runs[run];
    const IndexChange& first = batch[i];
    // Unbuilt here: these changes are in the store its rebuild reads.
    if (auto it = skip.find(first.cube); it != skip.end() && (it->second >> which & 1u)) {
      (*outcomes)[run] = Outcome::skipped;
      continue;
    }
    const std::uint64_t faults = r.plugin_faults();
    std::uint64_t version = 0;
    for (std::size_t k = i; k < j; ++k) version = std::max(version, batch[k].version);
    Status err;
    if (first.kind == IndexChange::Kind::remove) {
      std::vector<std::uint64_t> ids;
      for (std::size_t k = i; k < j; ++k) ids.push_back(batch[k].item.id);
      err = r.remove(first.cube, ids, version);
    } else {
      std::vector<IndexedItem> items;
      for (std::size_t k = i; k < j; ++k) {
        // An item its embedder failed on is left out of the dense retriever.
        if (which == 0 && batch[k].kind == IndexChange::Kind::index && vectors[k].empty()) continue;
        items.push_back(
            {&batch[k].item, vectors[k], batch[k].kind == IndexChange::Kind::attributes});
      }
      err = r.index(first.cube, items, version, stopping_.load(std::memory_order_acquire));
    }
    if (!err.ok()) {
      // Committed, but not searchable through this retriever until it is
      // rebuilt (the next start, or its host's restart): say so loudly.
      spdlog::error("indexing {} change(s) to cube {}: {}", j - i, first.cube_name, err.message);
      // A host killed from outside (the OOM killer) is not the items' doing.
      (*outcomes)[run] = r.plugin_faults() != faults ? Outcome::killed_host : Outcome::failed;
    }
  }
}

void IndexSet::note_left_out(const std::vector<IndexChange>& batch,
                             const std::vector<std::vector<float>>& vectors,
                             const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                             const std::array<std::vector<Outcome>, kStoring>& outcomes) {
  const bool any_killed = std::any_of(outcomes.begin(), outcomes.end(), [](const auto& o) {
    return std::find(o.begin(), o.end(), Outcome::killed_host) != o.end();
  });
  if (!any_killed && left_out_count_.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lock(mutex_);
  for (std::size_t r = 0; r < kStoring; ++r) {
    for (std::size_t run = 0; run < runs.size(); ++run) {
      auto [i, j] = runs[run];
      const Outcome outcome = outcomes[r][run];
      auto& left_out = left_out_[r][batch[i].cube];
      if (outcome == Outcome::indexed) {
        // A later version went in: a rebuild sends it again (not one the
        // embedder failed on: it went nowhere).
        for (std::size_t k = i; k < j; ++k) {
          if (r == 0 && batch[k].kind == IndexChange::Kind::index && vectors[k].empty()) continue;
          left_out.erase(batch[k].item.id);
        }
      } else if (outcome == Outcome::killed_host && batch[i].kind != IndexChange::Kind::remove &&
                 j - i <= kMaxLeftOutRun) {
        for (std::size_t k = i; k < j; ++k) {
          if (left_out.insert(batch[k].item.id).second) {
            spdlog::error(
                "cube {}: item {} is left out of the {} retriever until memosd restarts: its "
                "host died indexing it (a rebuild would send it again)",
                batch[i].cube_name, batch[k].item.id, storing()[r]->name());
          }
        }
      }
      if (left_out.empty()) left_out_[r].erase(batch[i].cube);
    }
  }
  std::size_t count = 0;
  for (const auto& per_retriever : left_out_) {
    for (const auto& [cube, ids] : per_retriever) count += ids.size();
  }
  left_out_count_.store(count, std::memory_order_release);
}

void IndexSet::drop_now(store::CubeId cube) {
  {
    std::lock_guard lock(mutex_);
    erase_unbuilt_locked(cube);
    for (auto& per_retriever : left_out_) per_retriever.erase(cube);
  }
  for (const PluginRetriever* r : storing()) {
    if (Status s = r->drop(cube); !s.ok()) spdlog::warn("{}", s.message);
  }
  std::lock_guard lock(mutex_);
  cubes_.erase(cube);
}

}  // namespace memos::kernel
