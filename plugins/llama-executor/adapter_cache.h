// adapter_cache.h — LoRA adapters kept loaded, the least recently used
// freed first, within a byte budget (executor.max_adapter_mb; the plugin's
// max_adapter_bytes). Loading one reads and checks its file and builds
// llama.cpp's tensors (milliseconds to seconds); using a loaded one costs
// nothing, so a tenant switching between a few adapters never reloads them.
//
// An adapter in use may not be freed (llama.cpp's context keeps pointers to
// the set applied): insert() evicts only adapters outside `keep`, and the
// engine clears the context's set before any insert. The set a call needs
// is always kept, even past the budget, which the next insert restores.
//
// Not thread-safe: the engine calls it under its own mutex.
#pragma once

#include <llama.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace memos::llama_exec {

struct AdapterFree {
  void operator()(llama_adapter_lora* a) const { llama_adapter_lora_free(a); }
};
using AdapterPtr = std::unique_ptr<llama_adapter_lora, AdapterFree>;

struct AdapterStats {
  std::uint32_t loaded = 0;
  std::uint64_t bytes = 0, budget = 0, loads = 0;
};

class AdapterCache {
 public:
  explicit AdapterCache(std::uint64_t budget_bytes) : budget_(budget_bytes) {}

  bool enabled() const { return budget_ > 0; }
  // The adapter loaded under `digest` (raw SHA-256), made the most recently
  // used; null if none (or a control vector).
  llama_adapter_lora* find(const std::string& digest);
  // The control vector read under `digest` (its layers' directions, layer 1
  // first), likewise.
  const std::vector<float>* find_vector(const std::string& digest);
  // Keeps a loaded adapter (or a control vector's directions) of `bytes`,
  // then frees the least recently used ones not named in `keep` while over
  // the budget. Counts a load.
  void insert(const std::string& digest, AdapterPtr adapter, std::uint64_t bytes,
              const std::vector<std::string>& keep);
  void insert_vector(const std::string& digest, std::vector<float> directions, std::uint64_t bytes,
                     const std::vector<std::string>& keep);
  AdapterStats stats() const;

 private:
  struct Entry {
    std::string digest;
    AdapterPtr adapter;           // a LoRA, or
    std::vector<float> vector{};  // a control vector's directions
    std::uint64_t bytes = 0;
  };
  void keep_within_budget(Entry entry, const std::vector<std::string>& keep);
  Entry* touch(const std::string& digest);
  std::uint64_t budget_;
  std::uint64_t bytes_ = 0, loads_ = 0;
  std::list<Entry> order_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace memos::llama_exec
