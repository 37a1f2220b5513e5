// resident_cache.h — state blobs kept in the executor's memory within a
// byte budget, the least useful dropped first: memosd sends each state's
// utility with it (StoredState.utility, its own eviction order), the least
// recently used going first among equals (all 0: plain LRU).
//
// Why here and not in memosd: a state is tens of MB, and restoring it should
// cost only llama_state_seq_set_data(). The executor reads the blob store
// file itself, checks its SHA-256 once, and keeps the verified bytes, so a
// hot state never crosses the process boundary or gets hashed again.
//
// Not thread-safe: the engine calls it under its own mutex.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "plugins/llama-executor/staging_pool.h"

namespace memos::llama_exec {

// A verified state blob, in the staging pool's memory.
using Blob = std::shared_ptr<const StagedBytes>;

struct ResidentStats {
  std::uint32_t states = 0;
  std::uint64_t bytes = 0, budget = 0, hits = 0, misses = 0;
  // Where they live: of states and bytes, those in page-locked memory (a
  // GPU executor's; one DMA to the device each), the rest in ordinary memory.
  std::uint32_t pinned_states = 0;
  std::uint64_t pinned_bytes = 0;
};

class ResidentCache {
 public:
  explicit ResidentCache(std::uint64_t budget_bytes) : budget_(budget_bytes) {}

  // The blob stored under `digest` (raw SHA-256), or null. Counts a hit or a
  // miss; a hit becomes the most recently used and takes `utility` as its
  // worth (memosd's, as of this use).
  Blob find(const std::string& digest, double utility = 0);
  // Keeps a verified blob worth `utility`, evicting the least useful ones
  // (the least recently used among equals) to stay within the budget. A
  // blob larger than the whole budget is not kept; nor is one that would
  // evict a more useful state than itself.
  void insert(const std::string& digest, Blob blob, double utility = 0);
  void erase(const std::string& digest);
  ResidentStats stats() const;

 private:
  struct Entry {
    std::string digest;
    Blob blob;
    double utility = 0;
  };
  std::uint64_t budget_;
  std::uint64_t bytes_ = 0, hits_ = 0, misses_ = 0;
  std::list<Entry> order_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace memos::llama_exec
