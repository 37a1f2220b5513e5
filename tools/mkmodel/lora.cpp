#include "lora.h"

#include "seeded_random.h"

#include <ggml.h>
#include <gguf.h>
#include <openssl/evp.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

namespace memos::mkmodel {
namespace {

struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};

std::string sha256_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    EVP_DigestUpdate(md.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[32];
  unsigned int n = 0;
  EVP_DigestFinal_ex(md.get(), digest, &n);
  std::string hex;
  char two[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(two, sizeof two, "%02x", digest[i]);
    hex += two;
  }
  return hex;
}

bool adapted(const std::string& name) {
  static const char* const kMatrices[] = {
      ".attn_q.weight",   ".attn_k.weight",   ".attn_v.weight", ".attn_output.weight",
      ".ffn_gate.weight", ".ffn_down.weight", ".ffn_up.weight"};
  if (name.rfind("blk.", 0) != 0) return false;
  for (const char* m : kMatrices) {
    const std::string suffix(m);
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return true;
  }
  return false;
}

}  // namespace

std::string write_random_lora(const LoraOptions& o) {
  ggml_context* shapes_raw = nullptr;
  std::unique_ptr<gguf_context, GgufFree> model(
      gguf_init_from_file(o.model.c_str(), {/*no_alloc=*/true, &shapes_raw}));
  std::unique_ptr<ggml_context, GgmlFree> shapes(shapes_raw);
  if (!model) return o.model + " is not a readable GGUF";
  const std::int64_t arch_key = gguf_find_key(model.get(), "general.architecture");
  if (arch_key < 0) return o.model + " has no general.architecture";
  const std::string arch = gguf_get_val_str(model.get(), arch_key);
  const std::string base = sha256_hex(o.model);
  if (base.empty()) return "cannot read " + o.model;

  struct Pair {
    std::string name;
    std::int64_t ne0, ne1;
  };
  std::vector<Pair> targets;
  for (ggml_tensor* t = ggml_get_first_tensor(shapes.get()); t;
       t = ggml_get_next_tensor(shapes.get(), t)) {
    if (adapted(t->name)) targets.push_back({t->name, t->ne[0], t->ne[1]});
  }
  if (targets.empty()) return o.model + " has no block matrices to adapt";

  const std::int64_t r = o.rank;
  ggml_init_params ip{/*mem_size=*/ggml_tensor_overhead() * 2 * targets.size() + 64,
                      /*mem_buffer=*/nullptr, /*no_alloc=*/true};
  std::unique_ptr<ggml_context, GgmlFree> decl(ggml_init(ip));
  std::unique_ptr<gguf_context, GgufFree> out(gguf_init_empty());
  gguf_set_val_str(out.get(), "general.type", "adapter");
  gguf_set_val_str(out.get(), "general.architecture", arch.c_str());
  gguf_set_val_str(out.get(), "general.name", "memos-mkmodel-lora");
  gguf_set_val_str(out.get(), "adapter.type", "lora");
  gguf_set_val_f32(out.get(), "adapter.lora.alpha", static_cast<float>(r));
  gguf_set_val_str(out.get(), "memos.base_model.sha256", base.c_str());
  std::vector<std::vector<float>> data;
  data.reserve(2 * targets.size());
  const float scale = o.std * std::sqrt(3.0f);
  auto add = [&](const std::string& name, std::int64_t ne0, std::int64_t ne1) {
    ggml_tensor* t = ggml_new_tensor_2d(decl.get(), GGML_TYPE_F32, ne0, ne1);
    ggml_set_name(t, name.c_str());
    gguf_add_tensor(out.get(), t);
    Rng rng{o.seed ^ fnv1a(name)};
    std::vector<float> values(static_cast<std::size_t>(ne0 * ne1));
    for (float& v : values) v = rng.symmetric() * scale;
    gguf_set_tensor_data(out.get(), name.c_str(), values.data());
    data.push_back(std::move(values));  // the data must live until the write
  };
  for (const Pair& p : targets) {
    // llama.cpp computes B·(A·x): A is [ne0 of the weight, rank], B is
    // [rank, ne1 of the weight].
    add(p.name + ".lora_a", p.ne0, r);
    add(p.name + ".lora_b", r, p.ne1);
  }
  const std::string tmp = o.out + ".tmp";
  if (!gguf_write_to_file(out.get(), tmp.c_str(), /*only_meta=*/false)) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return "could not write " + o.out;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, o.out, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return "could not write " + o.out + ": " + ec.message();
  }
  return "";
}

}  // namespace memos::mkmodel
