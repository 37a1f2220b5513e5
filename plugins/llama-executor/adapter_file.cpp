#include "plugins/llama-executor/adapter_file.h"

#include <ggml.h>
#include <gguf.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "plugins/llama-executor/llama_handles.h"

namespace memos::llama_exec {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string str_key(const gguf_context* g, const char* key) {
  const std::int64_t id = gguf_find_key(g, key);
  if (id < 0) return "";
  if (gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) {
    throw std::invalid_argument(std::string(key) + " is not a string");
  }
  return gguf_get_val_str(g, id);
}

std::string shape_text(const ggml_tensor* t) {
  return std::to_string(t->ne[0]) + "x" + std::to_string(t->ne[1]);
}

// gguf sizes its tables from the header's counts before reading them; a
// hostile file claiming billions must be refused first.
void check_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[24];
  if (!in.read(header, sizeof header)) throw std::invalid_argument("is truncated (no GGUF header)");
  if (std::memcmp(header, "GGUF", 4) != 0) throw std::invalid_argument("is not a GGUF file");
  std::int64_t tensors, keys;
  std::memcpy(&tensors, header + 8, 8);
  std::memcpy(&keys, header + 16, 8);
  if (tensors < 0 || tensors > kMaxAdapterTensors) {
    throw std::invalid_argument("claims " + std::to_string(tensors) + " tensors (at most " +
                                std::to_string(kMaxAdapterTensors) + ")");
  }
  if (keys < 0 || keys > kMaxAdapterKeys) {
    throw std::invalid_argument("claims " + std::to_string(keys) + " metadata keys (at most " +
                                std::to_string(kMaxAdapterKeys) + ")");
  }
}

void check_finite(const ggml_tensor* t) {
  const auto* traits = ggml_get_type_traits(t->type);
  const std::int64_t row = t->ne[0], rows = ggml_nrows(t);
  if (!traits->to_float && t->type != GGML_TYPE_F32) {
    throw std::invalid_argument(std::string("tensor '") + t->name + "' has type " +
                                ggml_type_name(t->type) + ", which cannot be read");
  }
  std::vector<float> values(static_cast<std::size_t>(row));
  const auto* bytes = static_cast<const char*>(t->data);
  for (std::int64_t r = 0; r < rows; ++r) {
    const char* at = bytes + r * t->nb[1];
    if (t->type == GGML_TYPE_F32) {
      std::memcpy(values.data(), at, values.size() * sizeof(float));
    } else {
      traits->to_float(at, values.data(), row);
    }
    for (float v : values) {
      if (!std::isfinite(v)) {
        throw std::invalid_argument(std::string("tensor '") + t->name +
                                    "' holds a value that is not finite (NaN or infinity)");
      }
    }
  }
}

}  // namespace

ModelShapes read_model_shapes(const std::string& model_path, const std::string& architecture,
                              const std::string& hash_hex) {
  ggml_context* raw = nullptr;
  GgufPtr g(gguf_init_from_file(model_path.c_str(), {/*no_alloc=*/true, &raw}));
  GgmlPtr ctx(raw);
  if (!g || !ctx)
    throw std::invalid_argument("model " + model_path + " has unreadable tensor infos");
  ModelShapes m;
  m.architecture = architecture;
  m.hash_hex = hash_hex;
  for (ggml_tensor* t = ggml_get_first_tensor(ctx.get()); t;
       t = ggml_get_next_tensor(ctx.get(), t)) {
    if (ggml_n_dims(t) == 2) m.matrices[t->name] = {t->ne[0], t->ne[1]};
  }
  return m;
}

AdapterFileFacts check_adapter_file(const std::string& path, const ModelShapes& model) {
  check_header(path);
  ggml_context* raw = nullptr;
  GgufPtr g(gguf_init_from_file(path.c_str(), {/*no_alloc=*/false, &raw}));
  GgmlPtr ctx(raw);
  if (!g || !ctx) throw std::invalid_argument("is not a readable GGUF file (truncated or corrupt)");

  AdapterFileFacts facts;
  const std::string type = str_key(g.get(), "general.type");
  if (type != "adapter") {
    throw std::invalid_argument("is not an adapter (general.type is '" + type + "')");
  }
  const std::string kind = str_key(g.get(), "adapter.type");
  if (kind != "lora") {
    throw std::invalid_argument("is a '" + kind + "' adapter; only LoRA adapters are supported");
  }
  const std::string arch = str_key(g.get(), "general.architecture");
  if (arch != model.architecture) {
    throw std::invalid_argument("is for architecture '" + arch + "', the model's is '" +
                                model.architecture + "'");
  }
  const std::string base = str_key(g.get(), "memos.base_model.sha256");
  if (!base.empty() && base != model.hash_hex) {
    throw std::invalid_argument("was made for base model " + base.substr(0, 12) +
                                ", the executor runs " + model.hash_hex.substr(0, 12));
  }
  facts.name = str_key(g.get(), "general.name");
  if (std::int64_t id = gguf_find_key(g.get(), "adapter.lora.alpha"); id >= 0) {
    if (gguf_get_kv_type(g.get(), id) != GGUF_TYPE_FLOAT32) {
      throw std::invalid_argument("adapter.lora.alpha is not a float");
    }
    facts.alpha = gguf_get_val_f32(g.get(), id);
    if (!std::isfinite(facts.alpha))
      throw std::invalid_argument("adapter.lora.alpha is not finite");
  }

  std::map<std::string, std::pair<const ggml_tensor*, const ggml_tensor*>> pairs;
  // The file's tensors (the context also holds gguf's one tensor of all
  // their data).
  for (std::int64_t i = 0; i < gguf_get_n_tensors(g.get()); ++i) {
    const std::string name = gguf_get_tensor_name(g.get(), i);
    const ggml_tensor* t = ggml_get_tensor(ctx.get(), name.c_str());
    if (!t) throw std::invalid_argument("tensor '" + name + "' cannot be read");
    if (ends_with(name, ".lora_a")) {
      pairs[name.substr(0, name.size() - 7)].first = t;
    } else if (ends_with(name, ".lora_b")) {
      pairs[name.substr(0, name.size() - 7)].second = t;
    } else if (!ends_with(name, "_norm.weight")) {  // llama.cpp skips these too
      throw std::invalid_argument("tensor '" + name + "' is neither a lora_a nor a lora_b");
    }
    check_finite(t);
  }
  if (pairs.empty()) throw std::invalid_argument("holds no LoRA tensors");
  for (const auto& [name, ab] : pairs) {
    const auto [a, b] = ab;
    if (!a || !b)
      throw std::invalid_argument("tensor '" + name + "' lacks its " + (a ? "lora_b" : "lora_a"));
    auto it = model.matrices.find(name);
    if (it == model.matrices.end()) {
      throw std::invalid_argument("adapts '" + name + "', which the model does not have");
    }
    const auto [ne0, ne1] = it->second;
    // llama.cpp's layout: y += B·(A·x), A of [ne0, rank], B of [rank, ne1];
    // the token embeddings are looked up, so their pair is the other way.
    const bool embeddings = ends_with(name, "token_embd.weight");
    const bool fits = embeddings ? ne0 == b->ne[1] && ne1 == a->ne[1] && a->ne[0] == b->ne[0]
                                 : ne0 == a->ne[0] && ne1 == b->ne[1] && a->ne[1] == b->ne[0];
    if (!fits) {
      throw std::invalid_argument("tensor '" + name + "' is " + shape_text(a) + " and " +
                                  shape_text(b) + " for a " + std::to_string(ne0) + "x" +
                                  std::to_string(ne1) + " matrix (made for other dimensions)");
    }
    const auto rank = static_cast<std::uint32_t>(embeddings ? a->ne[0] : a->ne[1]);
    if (rank > facts.rank) facts.rank = rank;
  }
  facts.tensors = static_cast<std::uint32_t>(pairs.size());
  return facts;
}

}  // namespace memos::llama_exec
