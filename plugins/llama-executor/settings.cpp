#include "plugins/llama-executor/settings.h"

#include <stdexcept>

namespace memos::llama_exec {

Settings read_settings(const memos::plugin_sdk::Config& config) {
  Settings s;
  s.model = config.get("model");
  if (s.model.empty()) {
    throw std::invalid_argument("setting model is required: the path of a GGUF model file");
  }
  s.threads = static_cast<int>(config.get_int("threads", 2, 1, 256));
  s.context = static_cast<std::uint32_t>(config.get_int("context", 4096, 16, 1 << 20));
  s.batch = static_cast<std::uint32_t>(config.get_int("batch", 512, 1, 1 << 16));
  s.kv_type = config.get("kv_type", "f16");
  if (s.kv_type == "f16") {
    s.kv_ggml = GGML_TYPE_F16;
  } else if (s.kv_type == "f32") {
    s.kv_ggml = GGML_TYPE_F32;
  } else if (s.kv_type == "q8_0") {
    s.kv_ggml = GGML_TYPE_Q8_0;
  } else {
    throw std::invalid_argument("setting kv_type = '" + s.kv_type +
                                "' is not one of f16, f32, q8_0");
  }
  s.resident_bytes =
      static_cast<std::uint64_t>(config.get_int("resident_bytes", 1ll << 30, 0, 1ll << 46));
  s.state_dir = config.get("state_dir");
  s.seed = static_cast<std::uint32_t>(config.get_int("seed", 0, 0, 0xFFFFFFFFll));
  s.max_batch = static_cast<std::uint32_t>(config.get_int("max_batch", 64, 1, 1 << 16));
  s.prompt_cache_bytes =
      static_cast<std::uint64_t>(config.get_int("prompt_cache_bytes", 256ll << 20, 0, 1ll << 46));
  s.max_adapter_bytes =
      static_cast<std::uint64_t>(config.get_int("max_adapter_bytes", 512ll << 20, 0, 1ll << 46));
  s.device = config.get("device", "auto");
  s.gpu_layers = static_cast<std::int32_t>(config.get_int("gpu_layers", -1, -1, 1 << 16));
  s.pinned_bytes =
      static_cast<std::uint64_t>(config.get_int("pinned_bytes", 1280ll << 20, 0, 1ll << 46));
  s.device_state_bytes =
      static_cast<std::uint64_t>(config.get_int("device_state_bytes", 0, 0, 1ll << 46));
  return s;
}

}  // namespace memos::llama_exec
