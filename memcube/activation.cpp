#include "memcube/activation.h"

#include <openssl/evp.h>

#include <memory>
#include <string_view>

namespace memos::store {
namespace {

using Context = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

void update(EVP_MD_CTX* ctx, std::string_view bytes) {
  EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
}

// Length-prefixed, so that no two field lists hash alike.
void update_field(EVP_MD_CTX* ctx, std::string_view field) {
  std::uint8_t length[4];
  for (int i = 0; i < 4; ++i) length[i] = static_cast<std::uint8_t>(field.size() >> (8 * i));
  EVP_DigestUpdate(ctx, length, sizeof(length));
  update(ctx, field);
}

Digest finish(EVP_MD_CTX* ctx) {
  Digest out{};
  unsigned size = 0;
  EVP_DigestFinal_ex(ctx, out.data(), &size);
  return out;
}

}  // namespace

std::vector<Digest> prefix_digests(const ActivationKey& key, const Digest& tenant_salt,
                                   std::uint32_t chunk, std::span<const std::int32_t> tokens) {
  std::vector<Digest> out;
  if (chunk == 0) return out;
  Context ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  update_field(ctx.get(), "memos-activation-v1");
  update_field(ctx.get(), key.model_hash);
  update_field(ctx.get(), key.adapters);
  update_field(ctx.get(), key.kv_type);
  update_field(ctx.get(), key.layout);
  update_field(ctx.get(), std::to_string(key.state_format));
  update_field(ctx.get(), std::to_string(chunk));
  EVP_DigestUpdate(ctx.get(), tenant_salt.data(), tenant_salt.size());
  Digest h = finish(ctx.get());

  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(chunk) * 4);
  for (std::size_t start = 0; start + chunk <= tokens.size(); start += chunk) {
    for (std::uint32_t i = 0; i < chunk; ++i) {
      auto v = static_cast<std::uint32_t>(tokens[start + i]);
      for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<std::uint8_t>(v >> (8 * b));
    }
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    EVP_DigestUpdate(ctx.get(), h.data(), h.size());
    EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size());
    h = finish(ctx.get());
    out.push_back(h);
  }
  return out;
}

}  // namespace memos::store
