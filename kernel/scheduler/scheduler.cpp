#include "kernel/scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <unordered_map>

#include "kernel/activation_tier.h"
#include "kernel/chat_adapters.h"
#include "kernel/index_set.h"
#include "kernel/memory_block.h"
#include "kernel/plugin_executor.h"
#include "kernel/policy_use.h"
#include "kernel/scheduler/auto_distill.h"
#include "kernel/scheduler/recalls.h"
#include "kernel/scheduler/strength.h"
#include "kernel/scheduler/working_set_selection.h"
#include "kernel/serial_lane.h"
#include "kernel/tenant_registry.h"
#include "kernel/wire_replies.h"

namespace memos::kernel::scheduler {
namespace {

// Writes through the commit queue, in `shard` (the cube owner's), and waits
// (a worker or the lane, never the writer thread). `on_commit` runs on the writer thread once the
// write is committed, before the wait ends: what only the writer thread may do (IndexSet::apply,
// whose queue the writer's flush takes unlocked).
store::Status commit_and_wait(store::CommitQueue& commits, std::uint32_t shard,
                              std::function<store::Status(store::WriteTxn&)> apply,
                              std::function<void()> on_commit = {}) {
  return commits.submit_and_wait({.apply = std::move(apply),
                                  .done =
                                      [on_commit = std::move(on_commit)](const store::Status& s) {
                                        if (s.ok() && on_commit) on_commit();
                                      },
                                  .shard = shard});
}

std::shared_ptr<const policies::TenantPolicy> policy_of(const Services& s, store::TenantId owner) {
  return s.tenants.peer(owner, nullptr).policy;
}

std::string percent(double r) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", r);
  return text;
}

// The state of a working set's block `tokens`. A set changes at its end
// (members keep their order, newcomers join last), so the state stored for
// its last generation usually holds most of the new block: restored, only
// the tokens after the shared prefix are decoded, and the lane is held that
// much less (a client chat that arrives meanwhile waits for it). Without
// one, or when the executor refuses it, the whole block is decoded.
// `prefill_ms` is what decoding the whole block takes (block_prefill_ms:
// scaled from the decoded part when a prefix was restored; 0: unknown);
// `reused` the restored tokens.
// Errors: the executor's.
Status prefill_block(const Services& s, store::TenantId owner,
                     const std::vector<std::int32_t>& tokens,
                     const std::vector<AdapterRef>& adapters,
                     const std::optional<FoundState>& found, std::string* state, double* prefill_ms,
                     std::uint32_t* reused) {
  *reused = 0;
  if (found && found->shared > 0) {
    StateRef ref = s.activations.state_ref(found->activation);
    GenerateArgs ga;
    ga.tokens = tokens;
    ga.adapters = adapters;
    ga.state = &ref;
    ga.max_tokens = 0;  // the prompt only
    ga.export_tokens = static_cast<std::uint32_t>(tokens.size());
    ga.cache_scope = cache_scope(owner);  // the owner's next chat starts from it
    GenerateResult gr;
    if (Status st = s.executor->generate(ga, &gr); !st.ok()) return st;
    if (gr.restore.restored && !gr.exported.empty()) {
      *state = std::move(gr.exported);
      *reused = gr.reused_tokens;
      *prefill_ms = block_prefill_ms(gr, tokens.size());
      return {};
    }
    // Refused (damaged, or made by another model): decoded whole below.
  }
  return s.executor->prefill(tokens, cache_scope(owner), state, prefill_ms, adapters);
}

}  // namespace

Status Scheduler::load(const store::Store& store) {
  std::optional<store::ReadTxn> txn;
  std::vector<store::WorkingSet> all;
  store::Status st = store.begin_read(&txn);
  if (st.ok()) st = txn->list_working_sets(&all);
  if (!st.ok()) return Status::from(st);
  std::lock_guard lock(mutex_);
  sets_.clear();
  for (auto& w : all) sets_[w.cube] = std::move(w);
  return {};
}

std::optional<store::WorkingSet> Scheduler::working_set(store::CubeId cube) const {
  std::lock_guard lock(mutex_);
  auto it = sets_.find(cube);
  if (it == sets_.end()) return std::nullopt;
  return it->second;
}

void Scheduler::note_chat(const Services& s, const store::Cube& cube, std::uint32_t prompt_tokens,
                          std::uint32_t reused_tokens) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    CubeStats& st = stats_[cube.id];
    st.chats += 1;
    st.restores += reused_tokens > 0 ? 1 : 0;
    st.prompt_tokens += prompt_tokens;
    st.reused_tokens += reused_tokens;
    if (!sets_.contains(cube.id)) first = chatted_.insert(cube.id).second;
  }
  if (first) request_pass(s);
}

void Scheduler::request_pass(const Services& s) {
  {
    std::lock_guard lock(mutex_);
    if (pass_requested_) return;
    pass_requested_ = true;
  }
  s.run_on_worker([this, &s] {
    {
      std::lock_guard lock(mutex_);
      pass_requested_ = false;
    }
    PassSummary summary;
    if (Status st = run_pass(s, std::nullopt, &summary); !st.ok())
      spdlog::warn("scheduler pass: {}", st.message);
  });
}

Status Scheduler::run_pass(const Services& s, std::optional<store::TenantId> only,
                           PassSummary* out) {
  std::lock_guard pass(pass_mutex_);
  const auto started = std::chrono::steady_clock::now();
  *out = {};
  out->at_ms = now_ms();
  std::vector<store::Cube> cubes;
  {
    std::optional<store::ReadTxn> txn;
    store::Status st = s.store.begin_read(&txn);
    if (st.ok()) st = txn->list_all_cubes(&cubes);
    if (!st.ok()) return Status::from(st);
  }
  Status failed;
  for (const store::Cube& cube : cubes) {
    if (only && cube.owner != *only) continue;
    // A cluster: another node owns the cube's shard and schedules it.
    if (!s.writes_for(cube.owner)) continue;
    out->cubes += 1;
    // One cube's failure (a full disk) does not keep the others waiting.
    if (Status st = schedule_cube(s, cube, out); !st.ok()) {
      spdlog::warn("scheduler: cube {} of tenant {}: {}", cube.name, cube.owner, st.message);
      failed = st;
    }
  }
  out->took_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  {
    std::lock_guard lock(mutex_);
    // Forget cubes removed since.
    auto gone = [&](store::CubeId id) {
      return std::none_of(cubes.begin(), cubes.end(),
                          [id](const store::Cube& c) { return c.id == id; });
    };
    std::erase_if(chatted_, gone);
    std::erase_if(sets_, [&](const auto& entry) { return gone(entry.first); });
    std::erase_if(calibration_, [&](const auto& entry) { return gone(entry.first); });
    out->working_sets = static_cast<std::uint32_t>(sets_.size());
    if (!only) last_pass_ = *out;
    passes_ += 1;
  }
  return failed;
}

Status Scheduler::schedule_cube(const Services& s, const store::Cube& cube, PassSummary* out) {
  auto policy = policy_of(s, cube.owner);
  const policies::SchedulerSettings settings = settings_for(s.config, *policy);
  const std::int64_t now = now_ms();
  if (settings.forgetting == policies::Forgetting::archive) {
    if (Status st = archive_cold(s, cube, settings, now, out); !st.ok()) return st;
  }
  if (settings.enabled && policy->distill_after) {
    bool started = false;
    if (Status st = start_auto_distill(s, cube, policy, now, &started); !st.ok()) {
      spdlog::warn("distilling cube {}'s memories: {}", cube.name, st.message);
    }
    out->distillations += started;
  }
  bool has_chats;
  {
    std::lock_guard lock(mutex_);
    has_chats = sets_.contains(cube.id) || chatted_.contains(cube.id);
  }
  if (!settings.enabled || !has_chats) return {};
  return select(s, cube, settings, now, out);
}

Status Scheduler::archive_cold(const Services& s, const store::Cube& cube,
                               const policies::SchedulerSettings& settings, std::int64_t now,
                               PassSummary* out) {
  // Whether the item's retention has been below the threshold for
  // archive_after_s: from the moment it fell there (strength.h).
  auto cold = [&](const store::Item& it, const store::AccessStats& stats) {
    if (it.state != store::State::active || it.tier != store::Tier::plaintext) return false;
    const std::int64_t below =
        falls_below_at_ms(stats, it.created_at_ms, settings.time_unit_s, settings.archive_below);
    return now >= below + static_cast<std::int64_t>(settings.archive_after_s) * 1000;
  };
  std::vector<store::ItemId> candidates;
  {
    std::optional<store::ReadTxn> txn;
    store::Status st = s.store.begin_read(&txn);
    store::Status failed;
    if (st.ok()) {
      st = txn->for_each_live_item(cube.id, [&](const store::Item& it) {
        store::AccessStats stats;
        if (store::Status e = txn->access_stats(cube.id, it.id, &stats); !e.ok()) failed = e;
        if (cold(it, stats)) candidates.push_back(it.id);
      });
    }
    if (st.ok()) st = failed;
    if (!st.ok()) return Status::from(st);
  }
  if (candidates.empty()) return {};
  // Checked again in the write: a recall may have come in since the read.
  auto archived = std::make_shared<std::vector<store::Item>>();
  store::Status st = commit_and_wait(
      s.commits, s.store.shard_of(cube.owner),
      [=, &settings](store::WriteTxn& txn) {
        archived->clear();
        for (store::ItemId id : candidates) {
          store::Item it;
          store::AccessStats stats;
          store::Status e = txn.reader().get_item(cube.id, id, 0, &it);
          if (e.code == store::Errc::not_found) continue;
          if (e.ok()) e = txn.reader().access_stats(cube.id, id, &stats);
          if (!e.ok()) return e;
          if (!cold(it, stats)) continue;
          store::Item written;
          if (e = txn.set_state(cube.id, id, store::State::archived, cube.owner, now, &written,
                                kSchedulerSession);
              !e.ok()) {
            return e;
          }
          archived->push_back(std::move(written));
        }
        return store::Status{};
      },
      [&s, cube, archived] {
        // Out of default searches.
        for (const store::Item& it : *archived) s.indexes.apply(cube, it, nullptr);
      });
  if (!st.ok()) return Status::from(st);
  for (const store::Item& it : *archived) {
    log_.add({now, cube.owner, cube.id, cube.name, it.id, Action::archived,
              "retention below " + percent(settings.archive_below) + " for " +
                  std::to_string(settings.archive_after_s) + " s"});
  }
  out->archived += static_cast<std::uint32_t>(archived->size());
  return {};
}

Status Scheduler::select(const Services& s, const store::Cube& cube,
                         const policies::SchedulerSettings& settings, std::int64_t now,
                         PassSummary* out) {
  store::WorkingSet set;
  {
    std::lock_guard lock(mutex_);
    if (auto it = sets_.find(cube.id); it != sets_.end()) set = it->second;
  }
  set.cube = cube.id;
  set.tenant = cube.owner;
  std::vector<Candidate> candidates;
  std::unordered_map<store::ItemId, double> retention_of;
  bool state_gone = false;
  {
    std::optional<store::ReadTxn> txn;
    store::Status st = s.store.begin_read(&txn);
    store::Status failed;
    if (st.ok()) {
      st = txn->for_each_live_item(cube.id, [&](const store::Item& it) {
        if (it.state != store::State::active || it.tier != store::Tier::plaintext) return;
        store::AccessStats stats;
        if (store::Status e = txn->access_stats(cube.id, it.id, &stats); !e.ok()) failed = e;
        const double r = retention(stats, it.created_at_ms, now, settings.time_unit_s);
        retention_of[it.id] = r;
        candidates.push_back(
            {it.id, working_set_score(r, it.importance), estimate_tokens(it.text)});
      });
    }
    if (st.ok()) st = failed;
    // A state the tier evicted (or a user removed) is made again.
    if (st.ok() && set.state != 0) {
      store::Activation a;
      store::Status e = txn->get_activation(cube.id, set.state, &a);
      if (e.code == store::Errc::not_found) {
        state_gone = true;
      } else if (!e.ok()) {
        st = e;
      }
    }
    if (!st.ok()) return Status::from(st);
  }
  double calibration = 1;
  {
    std::lock_guard lock(mutex_);
    if (auto it = calibration_.find(cube.id); it != calibration_.end()) calibration = it->second;
  }
  const auto budget =
      static_cast<std::uint32_t>(std::floor(settings.working_set_tokens / calibration));
  Selection sel =
      select_working_set(set.items, std::move(candidates), budget, store::kMaxWorkingSetItems);
  const bool is_new = set.generation == 0;
  if (sel.changed() || is_new || state_gone) {
    set.generation += 1;
    set.items = sel.items;
    set.estimated_tokens = sel.tokens;
    set.state = 0;
    set.block_tokens = 0;
    set.updated_at_ms = now;
    if (Status st = save(s, set, false); !st.ok()) return st;
    for (store::ItemId id : sel.joined) {
      log_.add({now, cube.owner, cube.id, cube.name, id, Action::promoted,
                "joined the working set (retention " + percent(retention_of[id]) + ")"});
    }
    for (store::ItemId id : sel.left) {
      auto r = retention_of.find(id);
      log_.add({now, cube.owner, cube.id, cube.name, id, Action::demoted,
                r == retention_of.end()
                    ? std::string("no longer an active memory")
                    : "left the working set (retention " + percent(r->second) + ")"});
    }
    out->promoted += static_cast<std::uint32_t>(sel.joined.size());
    out->demoted += static_cast<std::uint32_t>(sel.left.size());
  }
  {
    std::lock_guard lock(mutex_);
    chatted_.erase(cube.id);
  }
  if (set.state == 0 && !set.items.empty() && queue_prefill(s, cube, set.generation))
    out->prefills_queued += 1;
  return {};
}

bool Scheduler::queue_prefill(const Services& s, const store::Cube& cube,
                              std::uint64_t generation) {
  if (!s.executor) return false;
  auto policy = policy_of(s, cube.owner);
  if (!policy->tiers.activation ||
      !check_executor(*policy, s.config, s.executor->info().device).ok())
    return false;
  {
    std::lock_guard lock(mutex_);
    if (!prefilling_.insert(cube.id).second) return false;
  }
  // Background: a client's chat queued on the lane always goes first.
  s.executor_lane.post_background([this, &s, cube, generation](bool stopping) {
    if (!stopping) prefill(s, cube, generation);
    std::lock_guard lock(mutex_);
    prefilling_.erase(cube.id);
  });
  return true;
}

void Scheduler::measure_estimate(const Services& s, store::CubeId cube,
                                 const store::WorkingSet& set) {
  if (set.estimated_tokens == 0) return;
  // The block's own lines, without its heading and the template around it
  // (a block of no memories; its "(none)" line makes this a few tokens low).
  std::vector<std::int32_t> empty, question;
  std::string format;
  if (!s.executor->chat_tokens(build_memory_block({}, {}).text, "", &empty, &question, &format)
           .ok() ||
      empty.size() >= set.block_tokens) {
    return;
  }
  const double measured = static_cast<double>(set.block_tokens - empty.size()) /
                          static_cast<double>(set.estimated_tokens);
  std::lock_guard lock(mutex_);
  double& factor = calibration_.try_emplace(cube, 1.0).first->second;
  factor = calibrate_estimate(factor, measured);
}

void Scheduler::prefill(const Services& s, const store::Cube& cube, std::uint64_t generation) {
  auto current = working_set(cube.id);
  if (!current || current->generation != generation || current->state != 0) return;
  store::WorkingSet set = *current;
  std::vector<store::Item> members;
  // The owner's chats run with its policy's default adapters (when the cube
  // holds them): the set's state is made under the same set, or no chat
  // would find it.
  auto policy = policy_of(s, cube.owner);
  std::vector<AdapterRef> adapters;
  std::vector<std::string> labels;
  std::string adapter_set;
  {
    std::optional<store::ReadTxn> txn;
    if (store::Status st = s.store.begin_read(&txn); !st.ok()) {
      spdlog::warn("scheduler: reading cube {}: {}", cube.name, st.message);
      return;
    }
    for (store::ItemId id : set.items) {
      store::Item it;
      if (txn->get_item(cube.id, id, 0, &it).ok() && it.state == store::State::active)
        members.push_back(std::move(it));
    }
    if (Status st = chat_adapters(s, s.executor.get(), *policy, *txn, cube, {}, false, &adapters,
                                  &labels, &adapter_set);
        !st.ok()) {
      spdlog::warn("scheduler: the default adapters of {}: {}", cube.name, st.message);
      return;
    }
  }
  MemoryBlock block = build_memory_block(std::move(members), {});
  std::vector<std::int32_t> tokens, question;
  std::string format;
  if (Status st = s.executor->chat_tokens(block.text, "", &tokens, &question, &format); !st.ok()) {
    spdlog::warn("scheduler: tokenizing the working set of {}: {}", cube.name, st.message);
    return;
  }
  set.block_tokens = static_cast<std::uint32_t>(tokens.size());
  measure_estimate(s, cube.id, set);
  ExecutorInfo info = s.executor->info();
  info.key.adapters = adapter_set;
  ActivationTier& tier = s.activations;
  if (tokens.size() < tier.config().chunk_tokens || tokens.size() >= info.context_tokens) {
    // Too small to be worth a state, or too large for the model: the set
    // stands without one.
    (void)save(s, set, true);
    return;
  }
  std::optional<FoundState> found;
  if (Status st = tier.find(cube.owner, info.key, tokens, &found); !st.ok())
    spdlog::warn("scheduler: looking up an activation: {}", st.message);
  std::string reason;
  if (found && found->activation.tokens == tokens) {
    set.state = found->activation.id;
    reason = "the working set's state was already stored";
  } else {
    std::string state;
    double prefill_ms = 0;
    std::uint32_t reused = 0;
    if (Status st =
            prefill_block(s, cube.owner, tokens, adapters, found, &state, &prefill_ms, &reused);
        !st.ok()) {
      spdlog::warn("scheduler: prefilling the working set of {}: {}", cube.name, st.message);
      return;
    }
    store::Activation stored;
    if (Status st = tier.store(cube.owner, cube.id, info, tokens, block.ids, state, prefill_ms,
                               &stored, activation_budget_mb(*policy));
        !st.ok()) {
      spdlog::warn("scheduler: storing the working set state of {}: {}", cube.name, st.message);
      return;
    }
    set.state = stored.id;
    reason = "prefilled the working set's " + std::to_string(tokens.size()) + " tokens";
    if (reused > 0) reason += " (" + std::to_string(reused) + " restored from its last state)";
  }
  if (save(s, set, true).ok()) {
    log_.add({now_ms(), cube.owner, cube.id, cube.name, set.state, Action::promoted, reason});
  }
}

Status Scheduler::save(const Services& s, const store::WorkingSet& set, bool require_generation) {
  {
    std::lock_guard lock(mutex_);
    auto it = sets_.find(set.cube);
    if (require_generation && (it == sets_.end() || it->second.generation != set.generation))
      return Status::conflict("the working set changed meanwhile");
  }
  store::Status st =
      commit_and_wait(s.commits, s.store.shard_of(set.tenant),
                      [set](store::WriteTxn& txn) { return txn.put_working_set(set); });
  if (st.code == store::Errc::not_found) {  // the cube was removed meanwhile
    std::lock_guard lock(mutex_);
    sets_.erase(set.cube);
    return {};
  }
  if (!st.ok()) return Status::from(st);
  std::lock_guard lock(mutex_);
  auto it = sets_.find(set.cube);
  // A pass and a prefill may both save: the newer generation wins.
  if (it == sets_.end() || it->second.generation <= set.generation) sets_[set.cube] = set;
  return {};
}

void Scheduler::restore(const Services& s, const store::Cube& cube, store::ItemId item) {
  s.run_on_worker([this, &s, cube, item] {
    auto written = std::make_shared<store::Item>();
    const std::int64_t now = now_ms();
    store::Status st = commit_and_wait(
        s.commits, s.store.shard_of(cube.owner),
        [=](store::WriteTxn& txn) {
          store::Item it;
          store::Status e = txn.reader().get_item(cube.id, item, 0, &it);
          if (!e.ok()) return e;
          // Made active (or changed) by someone else meanwhile: theirs stands.
          if (it.state != store::State::archived || it.provenance.session != kSchedulerSession)
            return store::Status{store::Errc::conflict, "no longer archived by the scheduler"};
          return txn.set_state(cube.id, item, store::State::active, cube.owner, now, written.get(),
                               kSchedulerSession);
        },
        [&s, cube, written] { s.indexes.apply(cube, *written, nullptr); });
    if (st.code == store::Errc::conflict || st.code == store::Errc::not_found) return;
    if (!st.ok()) {
      spdlog::warn("scheduler: restoring {} of cube {}: {}", item, cube.name, st.message);
      return;
    }
    log_.add({now, cube.owner, cube.id, cube.name, item, Action::restored,
              "read while archived: active again"});
  });
}

void Scheduler::note_eviction(const store::Activation& gone, double utility) {
  std::string why = std::isnan(utility)
                        ? std::string("least recently used, for room")
                        : "lowest utility (" + std::to_string(utility) + "), for room";
  log_.add({now_ms(), gone.tenant, gone.cube, "", gone.id, Action::evicted, why});
  std::lock_guard lock(mutex_);
  for (auto& [cube, set] : sets_) {
    (void)cube;
    if (set.state == gone.id && set.cube == gone.cube)
      set.state = 0;  // the next pass makes it again
  }
}

std::vector<CubeSchedule> Scheduler::schedules(store::TenantId tenant, store::CubeId cube) const {
  std::vector<CubeSchedule> out;
  std::lock_guard lock(mutex_);
  for (const auto& [id, set] : sets_) {
    if (set.tenant != tenant || (cube != 0 && id != cube)) continue;
    CubeSchedule c;
    c.set = set;
    c.prefill_pending = prefilling_.contains(id);
    if (auto it = stats_.find(id); it != stats_.end()) {
      c.chats = it->second.chats;
      c.restores = it->second.restores;
      c.prompt_tokens = it->second.prompt_tokens;
      c.reused_tokens = it->second.reused_tokens;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<PassSummary> Scheduler::last_pass() const {
  std::lock_guard lock(mutex_);
  return last_pass_;
}

std::uint64_t Scheduler::passes() const {
  std::lock_guard lock(mutex_);
  return passes_;
}

}  // namespace memos::kernel::scheduler
