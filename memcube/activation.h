// activation.h — the activation tier's items: KV-cache states of a model for
// a token prefix, and the keys they are found by.
//
// A state is only valid for the exact model, adapter set, KV element type,
// attention layout and state format that made it, and for the exact token
// prefix it covers. Those fields, with the tenant's salt, start a chain of
// SHA-256 digests over fixed-size chunks of tokens (LMCache's scheme):
//
//   h0     = SHA-256(domain, model hash, adapters, kv type, layout, format, chunk size, salt)
//   h(i+1) = SHA-256(h(i), tokens of chunk i as little-endian int32)
//
// A stored state covering N tokens is found under h(1) .. h(N / chunk), so a
// prompt that shares its first k full chunks finds it by computing its own
// chain. A state made by another model (or under another tenant's salt) has
// other digests and can never be found for this one.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace memos::store {

using Digest = std::array<std::uint8_t, 32>;

// What a state depends on, as the executor describes itself.
struct ActivationKey {
  std::string model_hash;  // hex SHA-256 of the model file
  std::string adapters;    // adapter set and scales; "" for none
  std::string kv_type;     // e.g. "f16"
  std::string layout;      // attention layout and llama.cpp build
  std::uint32_t state_format = 0;
  bool operator==(const ActivationKey&) const = default;
};

struct Activation {
  std::uint64_t id = 0;
  std::uint64_t cube = 0;
  std::uint32_t tenant = 0;
  ActivationKey key;
  std::string model;  // the model's name, for people
  std::uint32_t chunk_tokens = 0;
  std::vector<std::int32_t> tokens;    // the prefix the state covers
  std::vector<std::uint64_t> sources;  // plaintext items it was made from
  Digest blob{};                       // the state blob (blob_store.h)
  std::uint64_t size = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t last_used_ms = 0;
  std::uint64_t uses = 0;
  std::vector<Digest> prefixes;  // the chain digests it is found under
  double prefill_ms = 0;         // decoding `tokens` when it was made; 0: unknown
};

// The chain digests h(1) .. h(tokens.size() / chunk) (none if the tokens do
// not fill one chunk). `chunk` must be > 0.
std::vector<Digest> prefix_digests(const ActivationKey& key, const Digest& tenant_salt,
                                   std::uint32_t chunk, std::span<const std::int32_t> tokens);

}  // namespace memos::store
