// sha256.h — SHA-256 of bytes and of files (OpenSSL EVP), for the model's
// content hash and the state blobs' digests.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace memos::llama_exec {

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view bytes);

// Streams the file (a model is gigabytes). Throws std::runtime_error naming
// the path if it cannot be read.
Digest sha256_file(const std::string& path);

std::string to_hex(const unsigned char* bytes, std::size_t size);
inline std::string to_hex(const Digest& d) {
  return to_hex(d.data(), d.size());
}

// Parses 64 hex digits; false if `hex` is anything else.
bool from_hex(std::string_view hex, Digest* out);

}  // namespace memos::llama_exec
