#include "kernel/activation_tier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <future>
#include <limits>
#include <optional>
#include <utility>

#include "kernel/scheduler/activation_utility.h"
#include "kernel/wire_replies.h"

namespace memos::kernel {
namespace {

using store::Errc;

// Candidates checked per chunk boundary: more than one exists only when
// several blocks share that prefix.
constexpr std::size_t kMaxCandidates = 64;

std::size_t shared_prefix(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
  std::size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

struct Ranked {
  store::CubeId cube = 0;
  std::uint64_t id = 0;
  double utility = 0;
};

// The tenant's items, least useful first (ties: least recently used first,
// the order the store lists them in). A tenant holds at most hundreds, so
// reading each record once per store() that must make room is cheap beside
// the state just written. Errors: the store's.
store::Status rank_by_utility(const store::ReadTxn& txn, store::TenantId tenant, std::int64_t now,
                              std::int64_t half_life_ms, std::vector<Ranked>* out) {
  std::vector<std::pair<store::CubeId, std::uint64_t>> all;
  if (store::Status s = txn.least_recent_activations(tenant, SIZE_MAX, &all); !s.ok()) return s;
  out->clear();
  for (const auto& [cube, id] : all) {
    store::Activation a;
    if (store::Status s = txn.get_activation(cube, id, &a); !s.ok()) return s;
    out->push_back({cube, id, scheduler::activation_utility(a, now, half_life_ms)});
  }
  std::stable_sort(out->begin(), out->end(),
                   [](const Ranked& x, const Ranked& y) { return x.utility < y.utility; });
  return {};
}

// Whether `cube` is still there: a grantee's state in a shared cube another
// shard removed stays until its own shard's retention drops it
// (WriteTxn::drop_orphaned_activations), and is no state meanwhile.
bool cube_is_there(const store::ReadTxn& txn, store::CubeId cube) {
  store::Cube c;
  return txn.read_cube(cube, &c).ok();
}

// The tenant's state of exactly `tokens` under `key`, among those listed
// under the block's own digest; `found` stays empty when there is none.
// Both a prefill's lookup and its store ask this first: a chat template's
// preamble makes every state of a tenant share its first chunks, so a
// capped scan of a shorter prefix may never reach the block's own state.
// Errors: the store's.
store::Status find_exact(const store::ReadTxn& txn, store::TenantId tenant,
                         const store::ActivationKey& key, const store::Digest& block,
                         std::span<const std::int32_t> tokens,
                         std::optional<store::Activation>* found) {
  found->reset();
  return txn.activations_under(block, [&](store::CubeId cube, std::uint64_t id) {
    store::Activation a;
    if (txn.get_activation(cube, id, &a).ok() && a.tenant == tenant && a.key == key &&
        std::equal(a.tokens.begin(), a.tokens.end(), tokens.begin(), tokens.end()) &&
        cube_is_there(txn, cube)) {
      *found = std::move(a);
      return false;
    }
    return true;
  });
}

}  // namespace

Status ActivationTier::find(store::TenantId tenant, const store::ActivationKey& key,
                            std::span<const std::int32_t> tokens,
                            std::optional<FoundState>* out) const {
  out->reset();
  std::optional<store::ReadTxn> txn;
  if (store::Status s = store_.begin_read(&txn); !s.ok()) return Status::from(s);
  store::Digest salt;
  store::Status s = txn->tenant_salt(tenant, &salt);
  if (s.code == Errc::not_found) return {};  // the tenant never stored one
  if (!s.ok()) return Status::from(s);
  auto digests = store::prefix_digests(key, salt, config_.chunk_tokens, tokens);
  // The block's own state first, however many share its prefix (else a
  // prefill would make it again).
  if (!digests.empty()) {
    std::optional<store::Activation> own;
    if (s = find_exact(*txn, tenant, key, digests.back(), tokens, &own); !s.ok())
      return Status::from(s);
    if (own) {
      const std::size_t shared = own->tokens.size();
      *out = FoundState{std::move(*own), shared};
    }
  }
  // Longest first: the first boundary with a usable item wins.
  for (std::size_t b = *out ? 0 : digests.size(); b-- > 0;) {
    std::vector<std::pair<store::CubeId, std::uint64_t>> ids;
    s = txn->activations_under(digests[b], [&](store::CubeId cube, std::uint64_t id) {
      ids.emplace_back(cube, id);
      return ids.size() < kMaxCandidates;
    });
    if (!s.ok()) return Status::from(s);
    for (const auto& [cube, id] : ids) {
      store::Activation a;
      if (s = txn->get_activation(cube, id, &a); !s.ok()) return Status::from(s);
      // The digest already names tenant, key and tokens; checking them again
      // costs little and makes a collision harmless.
      if (a.tenant != tenant || !(a.key == key) || !cube_is_there(*txn, cube)) continue;
      std::size_t shared = shared_prefix(a.tokens, tokens);
      if (shared < (b + 1) * config_.chunk_tokens) continue;
      // On a tie, the shorter state: a block's own beats a longer block it
      // begins (which a prefill would otherwise compute again, and which
      // restores tokens the prompt does not have).
      if (!*out || shared > (*out)->shared ||
          (shared == (*out)->shared && a.tokens.size() < (*out)->activation.tokens.size())) {
        *out = FoundState{std::move(a), shared};
      }
    }
    if (*out) break;
  }
  if (!*out) return {};
  txn.reset();  // not held across a fetch
  // A state another node stored (cluster mode) is fetched from the
  // cluster's bucket before the executor reads its file; one that cannot be
  // fetched now is no state: the chat decodes the block instead.
  if (store::Status f = blobs_.make_local((*out)->activation.blob, (*out)->activation.size);
      !f.ok()) {
    spdlog::warn("activation {}'s state cannot be read here: {}", (*out)->activation.id, f.message);
    out->reset();
  }
  return {};
}

store::Status ActivationTier::commit(std::uint32_t shard,
                                     std::function<store::Status(store::WriteTxn&)> apply) {
  return commits_.submit_and_wait({.apply = std::move(apply), .done = {}, .shard = shard});
}

Status ActivationTier::store(store::TenantId tenant, store::CubeId cube,
                             const ExecutorInfo& executor, std::vector<std::int32_t> tokens,
                             std::vector<std::uint64_t> sources, const std::string& state,
                             double prefill_ms, store::Activation* out,
                             std::optional<std::uint64_t> tenant_max_mb) {
  const std::uint64_t size = state.size();
  const std::uint64_t budget = tenant_max_mb.value_or(config_.tenant_max_mb) << 20;
  if (size > (config_.max_state_mb << 20)) {
    return Status::conflict("the state is " + std::to_string(size >> 20) +
                            " MB, over activation.max_state_mb (" +
                            std::to_string(config_.max_state_mb) + ")");
  }
  if (size > budget) {
    return Status::conflict("the state is larger than the tenant's activation budget (" +
                            std::string(tenant_max_mb
                                            ? "activation.max_mb or max_blob_mb of its policy"
                                            : "activation.tenant_max_mb") +
                            " = " + std::to_string(budget >> 20) + " MiB)");
  }
  if (tokens.size() < config_.chunk_tokens) {
    return Status::conflict("the block has " + std::to_string(tokens.size()) +
                            " tokens, less than one chunk (activation.chunk_tokens = " +
                            std::to_string(config_.chunk_tokens) + "): not worth keeping");
  }
  store::BlobId blob;
  if (store::Status s = blobs_.put(state, &blob); !s.ok()) return Status::from(s);

  const std::uint32_t chunk = config_.chunk_tokens;
  const ActivationEviction eviction = config_.eviction;
  const std::int64_t half_life_ms = std::int64_t{config_.eviction_half_life_s} * 1000;
  auto stored = std::make_shared<store::Activation>();
  // What the commit evicted, with each one's utility (NaN: lru), reported
  // once it is durable.
  using Evicted = std::vector<std::pair<store::Activation, double>>;
  auto evicted = std::make_shared<Evicted>();
  store::Status s = commit(
      store_.shard_of(tenant),
      [=, tokens = std::move(tokens),
       sources = std::move(sources)](store::WriteTxn& txn) -> store::Status {
        // A group the writer runs again (its map grown) runs this again: start
        // clean, or a stale id would read as "already stored".
        *stored = {};
        evicted->clear();
        store::Digest salt;
        if (store::Status e = txn.ensure_tenant_salt(tenant, &salt); !e.ok()) return e;
        auto digests = store::prefix_digests(executor.key, salt, chunk, tokens);
        // Two requests may have made the same block's state at once: keep one.
        std::optional<store::Activation> same;
        store::Status e =
            find_exact(txn.reader(), tenant, executor.key, digests.back(), tokens, &same);
        if (!e.ok()) return e;
        if (same) {
          *stored = std::move(*same);
          return {};
        }
        // Make room (the store keeps the usage and the LRU order): the least
        // useful first, ranked once, or the least recently used first.
        std::optional<std::vector<Ranked>> ranked;
        std::size_t next = 0;
        for (;;) {
          store::ActivationUsage usage;
          if (e = txn.reader().activation_usage(tenant, &usage); !e.ok()) return e;
          if (usage.bytes + size <= budget) break;
          std::pair<store::CubeId, std::uint64_t> victim;
          double utility = std::numeric_limits<double>::quiet_NaN();
          if (eviction == ActivationEviction::lru) {
            std::vector<std::pair<store::CubeId, std::uint64_t>> oldest;
            if (e = txn.reader().least_recent_activations(tenant, 1, &oldest); !e.ok()) return e;
            if (oldest.empty()) break;
            victim = oldest[0];
          } else {
            if (!ranked) {
              ranked.emplace();
              if (e = rank_by_utility(txn.reader(), tenant, now_ms(), half_life_ms, &*ranked);
                  !e.ok())
                return e;
            }
            if (next == ranked->size()) break;
            const Ranked& r = (*ranked)[next++];
            victim = {r.cube, r.id};
            utility = r.utility;
          }
          store::Activation gone;
          if (e = txn.remove_activation(victim.first, victim.second, &gone); !e.ok()) return e;
          spdlog::info("activation {} of tenant {} evicted ({} bytes, last used {})", gone.id,
                       tenant, gone.size, gone.last_used_ms);
          evicted->emplace_back(std::move(gone), utility);
        }
        store::Activation a;
        a.id = txn.next_id(now_ms());
        a.cube = cube;
        a.tenant = tenant;
        a.key = executor.key;
        a.model = executor.model;
        a.chunk_tokens = chunk;
        a.tokens = tokens;
        a.sources = sources;
        a.blob = blob;
        a.size = size;
        a.created_at_ms = a.last_used_ms = now_ms();
        a.prefill_ms = prefill_ms;
        a.prefixes = std::move(digests);
        if (e = txn.put_activation(a); !e.ok()) return e;
        *stored = std::move(a);
        return {};
      });
  if (!s.ok()) return Status::from(s);
  *out = *stored;
  // Durable now; on this thread, never the writer's.
  if (on_evicted_) {
    for (const auto& [gone, utility] : *evicted) on_evicted_(gone, utility);
  }
  return {};
}

Status ActivationTier::remove(store::CubeId cube, std::uint64_t id, store::Activation* removed) {
  // Written in its tenant's shard (whose usage it gives back), which may
  // not be the cube owner's: a grantee's chat stores states in a shared cube.
  store::Activation found;
  {
    std::optional<store::ReadTxn> txn;
    store::Status s = store_.begin_read(&txn);
    if (s.ok()) s = txn->get_activation(cube, id, &found);
    if (!s.ok()) return Status::from(s);
  }
  auto gone = std::make_shared<store::Activation>();
  store::Status s = commit(store_.shard_of(found.tenant), [=](store::WriteTxn& txn) {
    return txn.remove_activation(cube, id, gone.get());
  });
  if (s.ok()) *removed = *gone;
  return Status::from(s);
}

void ActivationTier::drop_unusable(const store::Activation& a) {
  if (store::Status s = blobs_.discard_if_damaged(a.blob); s.code == Errc::corrupt) {
    spdlog::warn("activation {}: {}", a.id, s.message);
  } else if (!s.ok()) {
    spdlog::warn("activation {}: checking its blob: {}", a.id, s.message);
  }
  store::Activation gone;
  if (Status s = remove(a.cube, a.id, &gone); !s.ok() && s.code != Code::not_found)
    spdlog::warn("removing activation {}: {}", a.id, s.message);
}

ActivationTier::Touch ActivationTier::touch(const store::Activation& activation) {
  auto done = std::make_shared<std::promise<void>>();
  Touch touch(done->get_future());
  const std::int64_t now = now_ms();
  const store::CubeId cube = activation.cube;
  const std::uint64_t id = activation.id;
  commits_.submit({.apply =
                       [=](store::WriteTxn& txn) {
                         store::Status e = txn.touch_activation(cube, id, now);
                         // Removed meanwhile: nothing to count.
                         return e.code == Errc::not_found ? store::Status{} : e;
                       },
                   .done =
                       [done, id](const store::Status& s) {
                         if (!s.ok())
                           spdlog::warn("counting a use of activation {}: {}", id, s.message);
                         done->set_value();
                       },
                   .shard = store_.shard_of(activation.tenant)});
  return touch;
}

StateRef ActivationTier::state_ref(const store::Activation& activation) const {
  // Under lru every state is worth 0: the executor's resident set then runs
  // least recently used too.
  double utility = 0;
  if (config_.eviction == ActivationEviction::utility) {
    utility = scheduler::activation_utility(activation, now_ms(),
                                            std::int64_t{config_.eviction_half_life_s} * 1000);
  }
  return {blobs_.path(activation.blob), activation.blob, activation.size, utility};
}

}  // namespace memos::kernel
