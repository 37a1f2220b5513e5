#include "memcube/activation.h"

#include <string_view>

#include "memcube/blob_store.h"

namespace memos::store {
namespace {

// Length-prefixed, so that no two field lists hash alike.
void append_field(std::string& out, std::string_view field) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((field.size() >> (8 * i)) & 0xff));
  out.append(field);
}

void append_digest(std::string& out, const Digest& d) {
  out.append(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace

std::vector<Digest> prefix_digests(const ActivationKey& key, const Digest& tenant_salt,
                                   std::uint32_t chunk, std::span<const std::int32_t> tokens) {
  std::vector<Digest> out;
  if (chunk == 0) return out;
  std::string bytes;
  append_field(bytes, "memos-activation-v1");
  append_field(bytes, key.model_hash);
  append_field(bytes, key.adapters);
  append_field(bytes, key.kv_type);
  append_field(bytes, key.layout);
  append_field(bytes, std::to_string(key.state_format));
  append_field(bytes, std::to_string(chunk));
  append_digest(bytes, tenant_salt);
  Digest h = sha256(bytes);
  for (std::size_t start = 0; start + chunk <= tokens.size(); start += chunk) {
    bytes.clear();
    append_digest(bytes, h);
    for (std::uint32_t i = 0; i < chunk; ++i) {
      auto v = static_cast<std::uint32_t>(tokens[start + i]);
      for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
    }
    h = sha256(bytes);
    out.push_back(h);
  }
  return out;
}

}  // namespace memos::store
