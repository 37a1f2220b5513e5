#include "plugins/llama-executor/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace memos::llama_exec {

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct FileClose {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

MdCtx start() {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL cannot start a SHA-256");
  }
  return ctx;
}

Digest finish(EVP_MD_CTX* ctx) {
  Digest d{};
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, d.data(), &n) != 1 || n != d.size()) {
    throw std::runtime_error("OpenSSL cannot finish a SHA-256");
  }
  return d;
}

}  // namespace

Digest sha256(std::string_view bytes) {
  MdCtx ctx = start();
  EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size());
  return finish(ctx.get());
}

Digest sha256_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileClose> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  MdCtx ctx = start();
  std::vector<unsigned char> buffer(1 << 20);
  for (;;) {
    std::size_t n = std::fread(buffer.data(), 1, buffer.size(), f.get());
    if (n > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), n);
    if (n < buffer.size()) {
      if (std::ferror(f.get())) throw std::runtime_error("cannot read " + path);
      break;
    }
  }
  return finish(ctx.get());
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

bool from_hex(std::string_view hex, Digest* out) {
  if (hex.size() != out->size() * 2) return false;
  auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out->size(); ++i) {
    int hi = value(hex[2 * i]), lo = value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace memos::llama_exec
