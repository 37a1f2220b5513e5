// activation_tier.h — the daemon's activation tier: finding a stored KV
// state for a prompt, storing new ones, and keeping each tenant within its
// budget (memos(7), "tiers").
//
// Records and chain digests live in LMDB (memcube/activation.h), state
// blobs in the blob store. A state's bytes are read by the executor itself
// from the blob's file (it checks the digest and keeps recent states in its
// own memory), so they never cross memosd's process on a restore.
//
// A tenant's states stay within its budget: the one that makes room is the
// least useful (activation.eviction = "utility", the default: see
// kernel/scheduler/activation_utility.h) or the least recently used ("lru").
//
// Thread-safety: every method may be called from any thread but the writer
// thread (store() waits for a commit); set_eviction_observer() only before
// the tier is shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernel/config.h"
#include "kernel/plugin_executor.h"
#include "kernel/status.h"
#include "memcube/blob_store.h"
#include "memcube/commit_queue.h"
#include "memcube/store.h"

namespace memos::kernel {

struct FoundState {
  store::Activation activation;
  std::size_t shared = 0;  // leading tokens the prompt shares with it
};

class ActivationTier {
 public:
  ActivationTier(store::Store& store, store::CommitQueue& commits, store::BlobStore& blobs,
                 const ActivationConfig& config)
      : store_(store), commits_(commits), blobs_(blobs), config_(config) {}

  // The tenant's stored state under `key` that shares the longest prefix of
  // whole chunks with `tokens`, if any. Errors: internal (the store's).
  Status find(store::TenantId tenant, const store::ActivationKey& key,
              std::span<const std::int32_t> tokens, std::optional<FoundState>* out) const;

  // Stores `state` (an executor's blob for `tokens`) as an activation item
  // of `cube`: the blob durably first, then its record. When the new one
  // would pass the tenant's budget (`tenant_max_mb`, the tenant's policy's
  // activation.max_mb, or without one activation.tenant_max_mb), the
  // tenant's items are evicted in the order activation.eviction says (least
  // useful, ties least recently used; or least recently used), each one
  // reported to the eviction observer once the commit succeeded. An
  // identical item (same key and tokens) is kept instead of a second one
  // (then nothing is evicted). `prefill_ms` is what decoding `tokens`
  // took (0: unknown): a chat that restores the state later reports the
  // time it saved from it. Errors: conflict (the state is larger than
  // max_state_mb or the tenant's budget, or covers less than a chunk),
  // storage_full, unavailable, internal.
  Status store(store::TenantId tenant, store::CubeId cube, const ExecutorInfo& executor,
               std::vector<std::int32_t> tokens, std::vector<std::uint64_t> sources,
               const std::string& state, double prefill_ms, store::Activation* out,
               std::optional<std::uint64_t> tenant_max_mb = std::nullopt);

  // Removes an item (its blob goes with the next garbage collection).
  // Errors: not_found, storage_full, unavailable, internal.
  Status remove(store::CubeId cube, std::uint64_t id, store::Activation* removed);
  // Forgets an item the executor refused: removes it, and its blob's file
  // if that is damaged (so that storing the same state again rewrites it).
  // Failures are logged.
  void drop_unusable(const store::Activation& activation);
  // Counts a use. The commit is submitted at once and the result waits for
  // it: a chat counts its state before the executor restores it and waits
  // after the generation, so that the `kv ls` a user runs after the chat
  // shows the use while the commit itself never sits on the reply's path
  // (a refused state is dropped after, which makes the count moot). A
  // failure is logged, not returned: the answer stands.
  class Touch {
   public:
    Touch() = default;
    explicit Touch(std::future<void> done) : done_(std::move(done)) {}
    void wait() {
      if (done_.valid()) done_.get();
    }

   private:
    std::future<void> done_;
  };
  [[nodiscard]] Touch touch(const store::Activation& activation);

  // What an executor needs to read the item's state.
  StateRef state_ref(const store::Activation& activation) const;

  const ActivationConfig& config() const { return config_; }

  // Called once per item store() evicted, with its utility when it was
  // chosen (NaN under activation.eviction = "lru"): after the commit that
  // removed it succeeded, on the thread that called store() (never the
  // writer's, never inside a transaction), so it may take locks and log.
  // Set it before the tier is shared (not synchronised); empty: none.
  using EvictionObserver = std::function<void(const store::Activation&, double utility)>;
  void set_eviction_observer(EvictionObserver observer) { on_evicted_ = std::move(observer); }

  // A chat that could use a stored state: whether it restored one (memctl
  // metrics' hits and misses). Thread-safe.
  void count_chat(bool restored) {
    (restored ? chat_hits_ : chat_misses_).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t chat_hits() const { return chat_hits_.load(std::memory_order_relaxed); }
  std::uint64_t chat_misses() const { return chat_misses_.load(std::memory_order_relaxed); }

 private:
  // Runs `apply` in a write of `shard` (the activation's tenant's:
  // docs/scale-out.md) and waits for its commit.
  store::Status commit(std::uint32_t shard, std::function<store::Status(store::WriteTxn&)> apply);

  store::Store& store_;
  store::CommitQueue& commits_;
  store::BlobStore& blobs_;
  const ActivationConfig& config_;
  EvictionObserver on_evicted_;
  std::atomic<std::uint64_t> chat_hits_{0}, chat_misses_{0};
};

}  // namespace memos::kernel
