// memos-mkmodel: writes a llama-architecture GGUF model with seeded random
// weights and a real tokenizer (every tokenizer.* key of a vocab-only GGUF,
// such as llama.cpp's models/ggml-vocab-*.gguf). The model is built in memory
// with llama_model_init_from_user and written with llama_model_save_to_file,
// so what comes out is what llama.cpp itself writes and loads. Its output is
// noise, but it tokenizes, decodes and costs what a real model of its shape
// costs: tiny ones for tests, 0.5B-class ones for benchmarks.
#include <ggml-backend.h>
#include <ggml.h>
#include <gguf.h>
#include <llama.h>
#include <CLI/CLI.hpp>

#include "lora.h"
#include "seeded_random.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using memos::mkmodel::fnv1a;
using memos::mkmodel::Rng;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Shape {
  uint32_t layers = 0;
  uint32_t embd = 0;
  uint32_t ff = 0;
  uint32_t heads = 0;
  uint32_t kv_heads = 0;
  uint32_t ctx = 0;
  bool tied = false;  // the output matrix is the token embeddings
};

const std::map<std::string, Shape>& presets() {
  static const std::map<std::string, Shape> p = {
      {"tiny", {2, 64, 128, 4, 2, 512, false}},
      {"small", {4, 256, 512, 8, 4, 2048, false}},
      // Qwen2.5-0.5B's dimensions, tied embeddings included (494M parameters
      // with Qwen2's vocab).
      {"0.5b", {24, 896, 4864, 14, 2, 4096, true}},
  };
  return p;
}

struct Fill {
  uint64_t seed;
};

// Norm weights are 1; every other weight is uniform with a standard deviation
// of 0.02 (GPT-2's initialisation), drawn from a stream that depends only on
// the seed and the tensor's name, so the file does not depend on load order.
void set_tensor_data(ggml_tensor* tensor, void* userdata) {
  const auto* fill = static_cast<const Fill*>(userdata);
  const int64_t n = ggml_nelements(tensor);
  const bool norm = std::strstr(tensor->name, "norm") != nullptr;
  Rng rng{fill->seed ^ fnv1a(tensor->name)};
  const float scale = 0.02f * std::sqrt(3.0f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = norm ? 1.0f : rng.symmetric() * scale;
  if (tensor->type == GGML_TYPE_F32) {
    ggml_backend_tensor_set(tensor, values.data(), 0, ggml_nbytes(tensor));
  } else if (tensor->type == GGML_TYPE_F16) {
    std::vector<ggml_fp16_t> half(values.size());
    ggml_fp32_to_fp16_row(values.data(), half.data(), n);
    ggml_backend_tensor_set(tensor, half.data(), 0, ggml_nbytes(tensor));
  } else {
    std::fprintf(stderr, "memos-mkmodel: tensor %s has unexpected type %s\n", tensor->name,
                 ggml_type_name(tensor->type));
    std::abort();
  }
}

bool g_verbose = false;

void log_callback(ggml_log_level level, const char* text, void*) {
  if (g_verbose || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

bool quiet_progress(float, void*) {
  return true;
}

struct GgufDeleter {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;

// Adds tokenizer.chat_template to the GGUF at `path`: new metadata, padded
// to the file's alignment, then the tensor data as it was (tensor offsets
// are relative to the data section). Rewritten through a second temporary.
bool add_chat_template(const std::string& path, const std::string& chat_template) {
  GgufPtr g(gguf_init_from_file(path.c_str(), {/*no_alloc=*/true, /*ctx=*/nullptr}));
  if (!g) return false;
  const std::size_t data_offset = gguf_get_data_offset(g.get());
  gguf_set_val_str(g.get(), "tokenizer.chat_template", chat_template.c_str());
  std::string meta(gguf_get_meta_size(g.get()), '\0');
  gguf_get_meta_data(g.get(), meta.data());
  const std::size_t align = gguf_get_alignment(g.get());
  meta.resize((meta.size() + align - 1) / align * align, '\0');
  const std::string rewritten = path + ".2";
  {
    std::ifstream in(path, std::ios::binary);
    std::ofstream out(rewritten, std::ios::binary | std::ios::trunc);
    in.seekg(static_cast<std::streamoff>(data_offset));
    out.write(meta.data(), static_cast<std::streamsize>(meta.size()));
    out << in.rdbuf();
    if (!in || !out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(rewritten, path, ec);
  if (ec) std::filesystem::remove(rewritten, ec);
  return !ec;
}

// Declares a weight (1-D when ne1 is 1) in the metadata: its name, shape and
// type, which llama_model_init_from_user creates it with.
void declare(gguf_context* meta, ggml_context* ctx, const std::string& name, int64_t ne0,
             int64_t ne1, ggml_type type) {
  ggml_tensor* t =
      ne1 == 1 ? ggml_new_tensor_1d(ctx, type, ne0) : ggml_new_tensor_2d(ctx, type, ne0, ne1);
  ggml_set_name(t, name.c_str());
  gguf_add_tensor(meta, t);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "memos-mkmodel: writes a llama-architecture GGUF with random weights and a real tokenizer",
      "memos-mkmodel"};
  std::string out;
  std::string vocab;
  std::string preset = "tiny";
  std::string type = "f32";
  std::string name;
  std::string output;
  uint64_t seed = 0;
  Shape s;
  app.add_option("--out", out, "the GGUF file to write")->required();
  app.add_option("--vocab", vocab, "a GGUF whose tokenizer.* keys to take (ggml-vocab-*.gguf)");
  memos::mkmodel::LoraOptions lora;
  app.add_option("--lora-for", lora.model,
                 "write a random LoRA adapter for this model instead of a model");
  app.add_option("--rank", lora.rank, "the adapter's rank (default 4)")
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--lora-std", lora.std,
                 "standard deviation of the adapter's entries (default 0.1)")
      ->check(CLI::Range(0.0f, 10.0f));
  app.add_option("--preset", preset, "tiny, small or 0.5b (default tiny); options below override")
      ->check(CLI::IsMember({"tiny", "small", "0.5b"}));
  app.add_option("--layers", s.layers, "blocks")->check(CLI::Range(1u, 1024u));
  app.add_option("--embd", s.embd, "embedding length")->check(CLI::Range(1u, 65536u));
  app.add_option("--ff", s.ff, "feed-forward length")->check(CLI::Range(1u, 262144u));
  app.add_option("--heads", s.heads, "attention heads")->check(CLI::Range(1u, 1024u));
  app.add_option("--kv-heads", s.kv_heads, "key/value heads")->check(CLI::Range(1u, 1024u));
  app.add_option("--ctx", s.ctx, "trained context length")->check(CLI::Range(1u, 1u << 24));
  app.add_option("--output-weights", output,
                 "tied (the token embeddings) or separate (default: the preset's)")
      ->check(CLI::IsMember({"tied", "separate"}));
  app.add_option("--seed", seed, "random seed (default 0)");
  app.add_option("--type", type,
                 "weight type of the matrices: f32, f16 or q8_0 (quantized by llama.cpp from the "
                 "f32 model; default f32)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  app.add_option("--name", name, "general.name (default memos-mkmodel-PRESET)");
  app.add_flag("-v,--verbose", g_verbose, "show llama.cpp's log");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  if (!lora.model.empty()) {
    lora.out = out;
    lora.seed = seed;
    llama_log_set(log_callback, nullptr);
    if (std::string why = memos::mkmodel::write_random_lora(lora); !why.empty()) {
      std::fprintf(stderr, "memos-mkmodel: %s\n", why.c_str());
      return kExitFailure;
    }
    std::printf("%s: LoRA adapter for %s, rank %u, seed %llu\n", out.c_str(), lora.model.c_str(),
                lora.rank, static_cast<unsigned long long>(seed));
    return 0;
  }
  if (vocab.empty()) {
    std::fprintf(stderr, "memos-mkmodel: --vocab is required to write a model\n");
    return kExitUsage;
  }

  Shape shape = presets().at(preset);
  if (s.layers) shape.layers = s.layers;
  if (s.embd) shape.embd = s.embd;
  if (s.ff) shape.ff = s.ff;
  if (s.heads) shape.heads = s.heads;
  if (s.kv_heads) shape.kv_heads = s.kv_heads;
  if (s.ctx) shape.ctx = s.ctx;
  if (!output.empty()) shape.tied = output == "tied";
  auto usage = [](const std::string& msg) {
    std::fprintf(stderr, "memos-mkmodel: %s\n", msg.c_str());
    return kExitUsage;
  };
  if (shape.embd % shape.heads != 0)
    return usage("--embd " + std::to_string(shape.embd) + " is not a multiple of --heads " +
                 std::to_string(shape.heads));
  if (shape.heads % shape.kv_heads != 0)
    return usage("--heads " + std::to_string(shape.heads) + " is not a multiple of --kv-heads " +
                 std::to_string(shape.kv_heads));
  const uint32_t head_dim = shape.embd / shape.heads;
  if (head_dim % 2 != 0)
    return usage("the head size (--embd / --heads = " + std::to_string(head_dim) +
                 ") must be even for RoPE");
  if (name.empty()) name = "memos-mkmodel-" + preset;

  std::error_code ec;
  if (!std::filesystem::is_regular_file(vocab, ec)) {
    std::fprintf(stderr, "memos-mkmodel: no vocab file %s\n", vocab.c_str());
    return kExitFailure;
  }

  llama_log_set(log_callback, nullptr);
  llama_backend_init();

  GgufPtr source(gguf_init_from_file(vocab.c_str(), {/*no_alloc=*/true, /*ctx=*/nullptr}));
  if (!source) {
    std::fprintf(stderr, "memos-mkmodel: %s is not a GGUF file\n", vocab.c_str());
    return kExitFailure;
  }
  const int64_t tokens_key = gguf_find_key(source.get(), "tokenizer.ggml.tokens");
  if (tokens_key < 0 || gguf_get_kv_type(source.get(), tokens_key) != GGUF_TYPE_ARRAY) {
    std::fprintf(stderr, "memos-mkmodel: %s has no tokenizer.ggml.tokens\n", vocab.c_str());
    return kExitFailure;
  }
  const auto n_vocab = static_cast<uint32_t>(gguf_get_arr_n(source.get(), tokens_key));

  // Every key of the vocab file, then all but tokenizer.* removed.
  // llama.cpp's saver keeps only the keys it knows: the vocab's chat
  // template is written back afterwards.
  std::string chat_template;
  if (int64_t k = gguf_find_key(source.get(), "tokenizer.chat_template"); k >= 0) {
    chat_template = gguf_get_val_str(source.get(), k);
  }
  GgufPtr meta(gguf_init_empty());
  gguf_set_kv(meta.get(), source.get());
  for (int64_t i = gguf_get_n_kv(meta.get()) - 1; i >= 0; --i) {
    const std::string key = gguf_get_key(meta.get(), i);
    if (key.rfind("tokenizer.", 0) != 0) gguf_remove_key(meta.get(), key.c_str());
  }
  const bool f16 = type == "f16";
  gguf_set_val_str(meta.get(), "general.architecture", "llama");
  gguf_set_val_str(meta.get(), "general.name", name.c_str());
  gguf_set_val_u32(meta.get(), "general.file_type",
                   f16 ? LLAMA_FTYPE_MOSTLY_F16 : LLAMA_FTYPE_ALL_F32);
  gguf_set_val_u32(meta.get(), "llama.vocab_size", n_vocab);
  gguf_set_val_u32(meta.get(), "llama.context_length", shape.ctx);
  gguf_set_val_u32(meta.get(), "llama.embedding_length", shape.embd);
  gguf_set_val_u32(meta.get(), "llama.block_count", shape.layers);
  gguf_set_val_u32(meta.get(), "llama.feed_forward_length", shape.ff);
  gguf_set_val_u32(meta.get(), "llama.attention.head_count", shape.heads);
  gguf_set_val_u32(meta.get(), "llama.attention.head_count_kv", shape.kv_heads);
  gguf_set_val_u32(meta.get(), "llama.rope.dimension_count", head_dim);
  gguf_set_val_f32(meta.get(), "llama.rope.freq_base", 10000.0f);
  gguf_set_val_f32(meta.get(), "llama.attention.layer_norm_rms_epsilon", 1e-5f);

  // Every tensor is declared with its shape and type (this llama.cpp creates
  // only the tensors the metadata names): the matrices as --type says, the
  // norms F32 as llama.cpp keeps them. Without output.weight, llama.cpp
  // uses the token embeddings as the output matrix (tied).
  const ggml_type wtype = f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
  ggml_init_params ip{/*mem_size=*/ggml_tensor_overhead() * (9 * size_t{shape.layers} + 8),
                      /*mem_buffer=*/nullptr, /*no_alloc=*/true};
  ggml_context* decl = ggml_init(ip);
  {
    const int64_t e = shape.embd, kv = int64_t{head_dim} * shape.kv_heads, f = shape.ff;
    declare(meta.get(), decl, "token_embd.weight", e, n_vocab, wtype);
    declare(meta.get(), decl, "output_norm.weight", e, 1, GGML_TYPE_F32);
    if (!shape.tied) declare(meta.get(), decl, "output.weight", e, n_vocab, wtype);
    for (uint32_t il = 0; il < shape.layers; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      declare(meta.get(), decl, b + "attn_norm.weight", e, 1, GGML_TYPE_F32);
      declare(meta.get(), decl, b + "attn_q.weight", e, e, wtype);
      declare(meta.get(), decl, b + "attn_k.weight", e, kv, wtype);
      declare(meta.get(), decl, b + "attn_v.weight", e, kv, wtype);
      declare(meta.get(), decl, b + "attn_output.weight", e, e, wtype);
      declare(meta.get(), decl, b + "ffn_norm.weight", e, 1, GGML_TYPE_F32);
      declare(meta.get(), decl, b + "ffn_gate.weight", e, f, wtype);
      declare(meta.get(), decl, b + "ffn_down.weight", f, e, wtype);
      declare(meta.get(), decl, b + "ffn_up.weight", e, f, wtype);
    }
  }

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.progress_callback = quiet_progress;
  Fill fill{seed};
  llama_model* model = llama_model_init_from_user(meta.get(), set_tensor_data, &fill, mp);
  int64_t n_params = 0;
  for (ggml_tensor* t = ggml_get_first_tensor(decl); t; t = ggml_get_next_tensor(decl, t))
    n_params += ggml_nelements(t);
  ggml_free(decl);
  if (!model) {
    std::fprintf(stderr, "memos-mkmodel: llama.cpp refused the model (-v shows why)\n");
    return kExitFailure;
  }
  // Written beside the target and renamed, so a failed run leaves no half file.
  std::string tmp = out + ".tmp";
  std::filesystem::remove(tmp, ec);
  llama_model_save_to_file(model, tmp.c_str());
  llama_model_free(model);
  if (!std::filesystem::is_regular_file(tmp, ec) || std::filesystem::file_size(tmp, ec) == 0 ||
      (!chat_template.empty() && !add_chat_template(tmp, chat_template))) {
    std::fprintf(stderr, "memos-mkmodel: could not write %s\n", out.c_str());
    std::filesystem::remove(tmp, ec);
    return kExitFailure;
  }
  // A quantized model is the F32 one through llama.cpp's own quantizer, as
  // users make theirs.
  if (type == "q8_0") {
    const std::string quantized = out + ".q8_0.tmp";
    llama_model_quantize_params qp = llama_model_quantize_default_params();
    qp.nthread = 2;
    qp.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
    const bool ok = llama_model_quantize(tmp.c_str(), quantized.c_str(), &qp) == 0;
    std::filesystem::remove(tmp, ec);
    if (!ok) {
      std::fprintf(stderr,
                   "memos-mkmodel: llama.cpp could not quantize the model (-v shows why)\n");
      std::filesystem::remove(quantized, ec);
      return kExitFailure;
    }
    tmp = quantized;
  }
  llama_backend_free();
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::fprintf(stderr, "memos-mkmodel: could not write %s: %s\n", out.c_str(),
                 ec.message().c_str());
    std::filesystem::remove(tmp, ec);
    return kExitFailure;
  }
  std::printf(
      "%s: llama, %u layers, embd %u, ff %u, heads %u/%u, ctx %u, vocab %u, %s, %s output, %.1fM "
      "parameters\n",
      out.c_str(), shape.layers, shape.embd, shape.ff, shape.heads, shape.kv_heads, shape.ctx,
      n_vocab, type.c_str(), shape.tied ? "tied" : "separate", static_cast<double>(n_params) / 1e6);
  return 0;
}
