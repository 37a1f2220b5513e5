// lora.h — random LoRA adapters for a model memos-mkmodel made (or any
// llama-architecture GGUF), for the parametric tier's tests and benchmarks.
#pragma once

#include <cstdint>
#include <string>

namespace memos::mkmodel {

struct LoraOptions {
  std::string model;  // the base model's GGUF
  std::string out;    // the adapter's GGUF (written to OUT.tmp, then renamed)
  std::uint32_t rank = 4;
  std::uint64_t seed = 0;
  // Standard deviation of both factors' entries. The adapter's change to a
  // weight is alpha/rank * B·A with alpha = rank, so 0.1 changes a tiny
  // model's greedy output visibly at scale 1.
  float std = 0.1f;
};

// Writes lora_a/lora_b pairs for every attention and feed-forward matrix of
// each block, with general.type = adapter, adapter.type = lora,
// adapter.lora.alpha = rank, the model's general.architecture and the
// model file's SHA-256 as memos.base_model.sha256. Returns "" or what
// failed (unreadable model, no blocks, a write error).
std::string write_random_lora(const LoraOptions& options);

}  // namespace memos::mkmodel
