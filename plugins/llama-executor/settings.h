// settings.h — the plugin's settings (the manifest's [settings], then the
// daemon's), read and checked once at create(): a bad value fails create()
// with MEMOS_ERR_INVALID and a message naming the setting.
#pragma once

#include <ggml.h>

#include <cstdint>
#include <string>

#include "memos/plugin_sdk.h"

namespace memos::llama_exec {

struct Settings {
  std::string model;             // path of the GGUF (required)
  int threads = 2;               // decode threads
  std::uint32_t context = 4096;  // tokens; clamped to the model's n_ctx_train
  std::uint32_t batch = 512;     // tokens per llama_decode (and per ubatch)
  std::string kv_type = "f16";   // KV cache element type: f16, f32 or q8_0
  ggml_type kv_ggml = GGML_TYPE_F16;
  std::uint64_t resident_bytes = 1ull << 30;  // 0: no resident states
  std::string state_dir;                      // "" : the model hash is computed at every start
  std::uint32_t seed = 0;                     // default sampling seed
  std::uint32_t max_batch = 64;               // embedder: texts per call
  // Memory for the states of recent prompts (prompt_cache.h); 0: none kept.
  std::uint64_t prompt_cache_bytes = 256ull << 20;
  // Memory for LoRA adapters kept loaded (adapter_cache.h); 0: adapters off.
  std::uint64_t max_adapter_bytes = 512ull << 20;
  // Where the model runs (device_choice.h): auto, cpu, gpu or gpu:N.
  std::string device = "auto";
  // On a GPU: the layers kept in its memory; negative: all of them.
  std::int32_t gpu_layers = -1;
  // On a GPU: page-locked host memory for state blobs (staging_pool.h).
  std::uint64_t pinned_bytes = 1280ull << 20;
  // Resident states kept in the KV cache itself, on the model's device
  // (device_slots.h): a context's worth of cells per state; 0: none.
  std::uint64_t device_state_bytes = 0;
};

// Throws std::invalid_argument with a clear message on a bad value.
Settings read_settings(const memos::plugin_sdk::Config& config);

}  // namespace memos::llama_exec
