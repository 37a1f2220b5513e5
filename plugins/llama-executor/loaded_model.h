// loaded_model.h — a GGUF model loaded into llama.cpp, with what both
// plugins describe of it: its name and its content hash.
#pragma once

#include <cstdint>
#include <string>

#include "plugins/llama-executor/device_choice.h"
#include "plugins/llama-executor/llama_handles.h"
#include "plugins/llama-executor/settings.h"
#include "plugins/llama-executor/sha256.h"

namespace memos::llama_exec {

struct LoadedModel {
  ModelPtr model;
  const llama_vocab* vocab = nullptr;
  std::string name;          // general.name, else the file's stem
  std::string architecture;  // general.architecture
  Digest hash{};             // SHA-256 of the file
  std::string hash_hex;
  bool hash_from_cache = false;
  std::int32_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ctx_train = 0;
  std::int32_t head_dim_k = 0, head_dim_v = 0;
  DeviceChoice device;          // where it runs (the `device` setting)
  std::int32_t gpu_layers = 0;  // of n_layer, on device.gpu (0 on the CPU)
};

// Loads it on the device the settings choose (device_choice.h). Throws
// std::invalid_argument naming the path when the file is missing or
// llama.cpp cannot load it, or naming the device setting when it names no
// device here.
LoadedModel load_model(const Settings& settings);

// Context size: the setting, clamped to what the model was trained for.
std::uint32_t context_tokens(const LoadedModel& model, const Settings& settings);

// What both plugins' contexts share: `n_ctx` tokens, one sequence, `batch`
// tokens per batch and per ubatch (one ubatch per batch: the batch split is
// then the only split), the settings' threads, flash attention off, no
// performance counters.
llama_context_params context_params(const Settings& settings, std::uint32_t n_ctx,
                                    std::uint32_t batch);

}  // namespace memos::llama_exec
