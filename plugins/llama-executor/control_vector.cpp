#include "plugins/llama-executor/control_vector.h"

#include <ggml-backend.h>
#include <ggml.h>
#include <gguf.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "plugins/llama-executor/gguf_bytes.h"
#include "plugins/llama-executor/llama_handles.h"

namespace memos::llama_exec {
namespace {

// What the eval callback gathers: each layer's output summed over a text's
// tokens.
struct Gather {
  std::int32_t n_embd = 0, n_layer = 0;
  std::vector<double> sums;          // n_layer x n_embd
  std::vector<std::int64_t> counts;  // rows summed per layer (the last layer may keep only
                                     // the tokens whose logits are asked for)
  std::vector<float> rows;           // scratch
  bool failed = false;
};

int layer_of(const char* name) {
  if (std::strncmp(name, "l_out-", 6) != 0) return -1;
  char* end = nullptr;
  const long il = std::strtol(name + 6, &end, 10);
  return *end == '\0' && il >= 0 && il < 1 << 16 ? static_cast<int>(il) : -1;
}

bool gather(ggml_tensor* t, bool ask, void* user_data) {
  auto* g = static_cast<Gather*>(user_data);
  const int il = layer_of(t->name);
  if (ask) return il > 0 && il < g->n_layer;
  if (il <= 0 || il >= g->n_layer) return true;
  if (t->type != GGML_TYPE_F32 || t->ne[0] != g->n_embd) {
    g->failed = true;
    return true;
  }
  const auto n = static_cast<std::size_t>(ggml_nelements(t));
  g->rows.resize(n);
  ggml_backend_tensor_get(t, g->rows.data(), 0, n * sizeof(float));
  double* sum = g->sums.data() + static_cast<std::size_t>(il) * static_cast<std::size_t>(g->n_embd);
  for (std::size_t i = 0; i < n; ++i) sum[i % static_cast<std::size_t>(g->n_embd)] += g->rows[i];
  g->counts[static_cast<std::size_t>(il)] += t->ne[1];
  return true;
}

// The mean over texts of each text's mean hidden state, per layer.
std::vector<double> mean_states(llama_model* model,
                                const std::vector<std::vector<llama_token>>& texts,
                                std::uint32_t n_ctx, int threads, std::int32_t n_embd,
                                std::int32_t n_layer) {
  Gather g;
  g.n_embd = n_embd;
  g.n_layer = n_layer;
  llama_context_params p = llama_context_default_params();
  p.n_ctx = n_ctx;
  p.n_batch = p.n_ubatch = n_ctx;
  p.n_seq_max = 1;
  p.n_threads = p.n_threads_batch = threads;
  p.cb_eval = gather;
  p.cb_eval_user_data = &g;
  p.no_perf = true;
  ContextPtr ctx(llama_init_from_model(model, p));
  if (!ctx) throw std::runtime_error("llama.cpp cannot create a context for the control vector");
  std::vector<double> mean(static_cast<std::size_t>(n_layer) * static_cast<std::size_t>(n_embd));
  for (const auto& tokens : texts) {
    g.sums.assign(mean.size(), 0.0);
    g.counts.assign(static_cast<std::size_t>(n_layer), 0);
    llama_memory_seq_rm(llama_get_memory(ctx.get()), 0, -1, -1);
    llama_batch batch = llama_batch_get_one(const_cast<llama_token*>(tokens.data()),
                                            static_cast<int32_t>(tokens.size()));
    if (llama_decode(ctx.get(), batch) != 0 || g.failed) {
      throw std::runtime_error("llama.cpp failed decoding a text for the control vector");
    }
    for (std::size_t i = 0; i < mean.size(); ++i) {
      const std::int64_t rows = g.counts[i / static_cast<std::size_t>(n_embd)];
      if (rows > 0) {
        mean[i] += g.sums[i] / static_cast<double>(rows) / static_cast<double>(texts.size());
      }
    }
  }
  return mean;
}

}  // namespace

bool is_control_vector_file(const std::string& path) {
  GgufPtr g(gguf_init_from_file(path.c_str(), {/*no_alloc=*/true, /*ctx=*/nullptr}));
  if (!g) return false;
  const std::int64_t id = gguf_find_key(g.get(), "general.architecture");
  return id >= 0 && gguf_get_kv_type(g.get(), id) == GGUF_TYPE_STRING &&
         std::strcmp(gguf_get_val_str(g.get(), id), "controlvector") == 0;
}

ControlVector read_control_vector(const std::string& path, const ModelShapes& model,
                                  std::int32_t n_embd, std::int32_t n_layer) {
  ggml_context* raw = nullptr;
  GgufPtr g(gguf_init_from_file(path.c_str(), {/*no_alloc=*/false, &raw}));
  GgmlPtr ctx(raw);
  if (!g || !ctx) throw std::invalid_argument("is not a readable GGUF file (truncated or corrupt)");
  if (const std::int64_t hint = gguf_find_key(g.get(), "controlvector.model_hint"); hint >= 0) {
    if (gguf_get_kv_type(g.get(), hint) != GGUF_TYPE_STRING ||
        gguf_get_val_str(g.get(), hint) != model.architecture) {
      throw std::invalid_argument("is a control vector for another architecture, the model's is '" +
                                  model.architecture + "'");
    }
  }
  ControlVector cv;
  cv.n_embd = n_embd;
  cv.layers = n_layer - 1;
  cv.data.assign(static_cast<std::size_t>(cv.layers) * static_cast<std::size_t>(n_embd), 0.0f);
  const std::int64_t n = gguf_get_n_tensors(g.get());
  if (n == 0) throw std::invalid_argument("holds no direction tensors");
  for (std::int64_t i = 0; i < n; ++i) {
    const std::string name = gguf_get_tensor_name(g.get(), i);
    const ggml_tensor* t = ggml_get_tensor(ctx.get(), name.c_str());
    int il = -1;
    if (name.rfind("direction.", 0) == 0) {
      char* end = nullptr;
      const long v = std::strtol(name.c_str() + 10, &end, 10);
      if (*end == '\0' && v > 0 && v < n_layer) il = static_cast<int>(v);
    }
    if (il < 1) {
      throw std::invalid_argument("tensor '" + name +
                                  "' is not direction.N for a layer N of 1 to " +
                                  std::to_string(n_layer - 1));
    }
    if (!t || t->type != GGML_TYPE_F32 || ggml_n_dims(t) != 1 || t->ne[0] != n_embd) {
      throw std::invalid_argument("tensor '" + name + "' is not " + std::to_string(n_embd) +
                                  " F32 values (made for other dimensions)");
    }
    const auto* v = static_cast<const float*>(t->data);
    float* dst =
        cv.data.data() + static_cast<std::size_t>(il - 1) * static_cast<std::size_t>(n_embd);
    for (std::int32_t j = 0; j < n_embd; ++j) {
      if (!std::isfinite(v[j])) {
        throw std::invalid_argument("tensor '" + name + "' holds a value that is not finite");
      }
      dst[j] += v[j];
    }
  }
  return cv;
}

std::string encode_control_vector(const ControlVector& cv, const std::string& architecture) {
  GgufPtr g(gguf_init_empty());
  gguf_set_val_str(g.get(), "general.architecture", "controlvector");
  gguf_set_val_str(g.get(), "controlvector.model_hint", architecture.c_str());
  gguf_set_val_i32(g.get(), "controlvector.layer_count", cv.layers);
  ggml_init_params ip{ggml_tensor_overhead() * static_cast<std::size_t>(cv.layers + 1), nullptr,
                      /*no_alloc=*/true};
  GgmlPtr decl(ggml_init(ip));
  std::vector<const void*> data;
  for (std::int32_t il = 1; il <= cv.layers; ++il) {
    ggml_tensor* t = ggml_new_tensor_1d(decl.get(), GGML_TYPE_F32, cv.n_embd);
    ggml_set_name(t, ("direction." + std::to_string(il)).c_str());
    gguf_add_tensor(g.get(), t);
    data.push_back(cv.data.data() +
                   static_cast<std::size_t>(il - 1) * static_cast<std::size_t>(cv.n_embd));
  }
  return gguf_bytes(g.get(), data);
}

ControlVector derive_control_vector(llama_model* model,
                                    const std::vector<std::vector<llama_token>>& positive,
                                    const std::vector<std::vector<llama_token>>& negative,
                                    std::uint32_t n_ctx, int threads) {
  if (positive.empty() || negative.empty()) {
    throw std::invalid_argument("a control vector needs texts on both sides");
  }
  if (positive.size() > kMaxControlTexts || negative.size() > kMaxControlTexts) {
    throw std::invalid_argument("at most " + std::to_string(kMaxControlTexts) + " texts a side");
  }
  for (const auto* side : {&positive, &negative}) {
    for (const auto& t : *side) {
      if (t.empty() || t.size() > n_ctx) {
        throw std::invalid_argument("a text of " + std::to_string(t.size()) + " tokens (1 to " +
                                    std::to_string(n_ctx) + ")");
      }
    }
  }
  ControlVector cv;
  cv.n_embd = llama_model_n_embd(model);
  const std::int32_t n_layer = llama_model_n_layer(model);
  cv.layers = n_layer - 1;
  if (cv.layers < 1) throw std::invalid_argument("a model of one layer has no control vector");
  const auto pos = mean_states(model, positive, n_ctx, threads, cv.n_embd, n_layer);
  const auto neg = mean_states(model, negative, n_ctx, threads, cv.n_embd, n_layer);
  cv.data.resize(static_cast<std::size_t>(cv.layers) * static_cast<std::size_t>(cv.n_embd));
  const std::size_t skip = static_cast<std::size_t>(cv.n_embd);  // layer 0 has no direction
  for (std::size_t i = 0; i < cv.data.size(); ++i) {
    cv.data[i] = static_cast<float>(pos[skip + i] - neg[skip + i]);
  }
  return cv;
}

}  // namespace memos::llama_exec
