// device_slots.h — resident states kept in the executor's KV cache itself,
// on the model's device (a GPU's memory, where it runs on one): each in a
// sequence of its own whose cells stay in the cache, so that a restore is
// llama_memory_seq_cp() into sequence 0 — the cells are shared, nothing is
// copied, no byte crosses from the host. The context's one unified KV
// buffer gets this many more cells (activation.gpu_max_mb, the executor's
// `device_state_bytes`, over the bytes of a cell).
//
// This class keeps only the books: which state is in which sequence, the
// prompt tokens it covers and the adapter set it was made under (a state
// here is used without reading its blob again), its worth, and which go
// when a new one needs a sequence or cells: the least useful, the least
// recently used among equals — the resident cache's order, which is
// memosd's (StoredState.utility).
//
// Not thread-safe: the engine calls it under its own mutex.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <vector>

namespace memos::llama_exec {

struct SlotState {
  std::string digest;                // the blob's raw SHA-256
  std::vector<std::int32_t> tokens;  // the prefix it covers: its cells
  std::string adapters;              // the canonical adapter set it was made under
  std::int32_t sequence = 0;         // its sequence in the context (1..sequences)
  double utility = 0;
};

struct SlotStats {
  std::uint32_t sequences = 0, held = 0;
  std::uint64_t cells = 0, cells_held = 0;
  std::uint64_t hits = 0, loads = 0, evictions = 0;
};

class DeviceSlots {
 public:
  // Sequences 1..sequences (sequence 0 is the working one) sharing `cells`
  // cells; either 0: none kept.
  DeviceSlots(std::uint32_t sequences = 0, std::uint64_t cells = 0);

  bool enabled() const { return sequences_ > 0 && cells_ > 0; }
  // The state stored under `digest`, or null. A hit becomes the most
  // recently used and takes `utility` as its worth.
  const SlotState* find(const std::string& digest, double utility);
  // Makes room for `state` (its digest, tokens, adapters and worth; its
  // sequence is chosen here) and books it: the sequences of the states it
  // displaced go to *evicted (the caller empties them first). Returns its
  // sequence, or 0 when it stays out: larger than all the cells, or room
  // would take a state worth more than it, as in the resident cache.
  std::int32_t place(SlotState state, std::vector<std::int32_t>* evicted);
  // Forgets `digest`; its sequence is free again (the caller empties it).
  void erase(const std::string& digest);
  // Forgets everything; returns the sequences that held states.
  std::vector<std::int32_t> clear();
  SlotStats stats() const;

 private:
  std::uint32_t sequences_;
  std::uint64_t cells_, held_cells_ = 0;
  std::list<SlotState> order_;  // front: most recently used
  std::vector<std::int32_t> free_;
  std::uint64_t hits_ = 0, loads_ = 0, evictions_ = 0;
};

}  // namespace memos::llama_exec
