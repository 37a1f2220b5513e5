#include "plugins/llama-executor/loaded_model.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "plugins/llama-executor/model_hash.h"

namespace memos::llama_exec {

namespace {

void errors_only(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

// A string of the model's metadata, or "" when it has none.
std::string meta(const llama_model* model, const std::string& key) {
  std::vector<char> buffer(256);
  int32_t n = llama_model_meta_val_str(model, key.c_str(), buffer.data(), buffer.size());
  if (n < 0) return "";
  if (static_cast<std::size_t>(n) >= buffer.size()) {
    buffer.resize(static_cast<std::size_t>(n) + 1);
    n = llama_model_meta_val_str(model, key.c_str(), buffer.data(), buffer.size());
    if (n < 0) return "";
  }
  return std::string(buffer.data(), static_cast<std::size_t>(n));
}

int32_t meta_int(const llama_model* model, const std::string& key, int32_t fallback) {
  const std::string v = meta(model, key);
  if (v.empty()) return fallback;
  try {
    return static_cast<int32_t>(std::stol(v));
  } catch (...) {
    return fallback;
  }
}

}  // namespace

void init_backend_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    llama_log_set(errors_only, nullptr);
    llama_backend_init();
  });
}

LoadedModel load_model(const Settings& settings) {
  init_backend_once();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(settings.model, ec)) {
    throw std::invalid_argument("model " + settings.model + " is not a readable file");
  }
  LoadedModel m;
  m.device = choose_device(settings.device);
  llama_model_params params = llama_model_default_params();
  // Only the chosen device: on the CPU none at all, or llama.cpp would still
  // hand large batches' products of CPU weights to a GPU it found
  // (op_offload), and "cpu" would not mean what it says.
  std::vector<ggml_backend_dev_t> devices;
  if (m.device.gpu) devices.push_back(m.device.gpu);
  devices.push_back(nullptr);
  params.devices = devices.data();
  params.n_gpu_layers = m.device.gpu ? settings.gpu_layers : 0;
  params.split_mode = LLAMA_SPLIT_MODE_NONE;
  m.model.reset(llama_model_load_from_file(settings.model.c_str(), params));
  if (!m.model) {
    throw std::invalid_argument("model " + settings.model + " does not load as a GGUF model");
  }
  const llama_model* model = m.model.get();
  m.vocab = llama_model_get_vocab(model);
  m.n_vocab = llama_vocab_n_tokens(m.vocab);
  m.n_embd = llama_model_n_embd(model);
  m.n_layer = llama_model_n_layer(model);
  m.n_head = std::max(1, llama_model_n_head(model));
  m.n_head_kv = llama_model_n_head_kv(model);
  m.n_ctx_train = llama_model_n_ctx_train(model);
  if (m.device.gpu) {
    m.gpu_layers = settings.gpu_layers < 0 ? m.n_layer : std::min(settings.gpu_layers, m.n_layer);
  }
  // Head sizes: the architecture's key_length / value_length when given,
  // else n_embd / n_head (as llama.cpp itself assumes).
  const std::string arch = meta(model, "general.architecture");
  m.head_dim_k = meta_int(model, arch + ".attention.key_length", m.n_embd / m.n_head);
  m.head_dim_v = meta_int(model, arch + ".attention.value_length", m.n_embd / m.n_head);
  m.architecture = arch;
  m.name = meta(model, "general.name");
  if (m.name.empty()) m.name = std::filesystem::path(settings.model).stem().string();
  try {
    ModelHash h = model_content_hash(settings.model, settings.state_dir);
    m.hash = h.digest;
    m.hash_from_cache = h.from_cache;
  } catch (const std::exception& e) {
    throw std::invalid_argument("model " + settings.model + " cannot be hashed: " + e.what());
  }
  m.hash_hex = to_hex(m.hash);
  return m;
}

std::uint32_t context_tokens(const LoadedModel& model, const Settings& settings) {
  std::uint32_t n = settings.context;
  if (model.n_ctx_train > 0) n = std::min(n, static_cast<std::uint32_t>(model.n_ctx_train));
  return n;
}

llama_context_params context_params(const Settings& settings, std::uint32_t n_ctx,
                                    std::uint32_t batch) {
  llama_context_params p = llama_context_default_params();
  p.n_ctx = n_ctx;
  p.n_batch = batch;
  p.n_ubatch = batch;
  p.n_seq_max = 1;
  p.n_threads = settings.threads;
  p.n_threads_batch = settings.threads;
  p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  p.no_perf = true;
  return p;
}

}  // namespace memos::llama_exec
