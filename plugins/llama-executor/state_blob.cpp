#include "plugins/llama-executor/state_blob.h"

#include <cstring>

namespace memos::llama_exec {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_string(std::string& out, const std::string& s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

// A cursor that refuses to read past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool take(std::size_t n, const char** at) {
    if (n > bytes_.size() - pos_) return false;
    *at = bytes_.data() + pos_;
    pos_ += n;
    return true;
  }
  bool u32(std::uint32_t* v) {
    const char* p;
    if (!take(4, &p)) return false;
    *v = 0;
    for (int i = 3; i >= 0; --i) *v = (*v << 8) | static_cast<unsigned char>(p[i]);
    return true;
  }
  bool u64(std::uint64_t* v) {
    const char* p;
    if (!take(8, &p)) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = (*v << 8) | static_cast<unsigned char>(p[i]);
    return true;
  }
  bool string(std::string* s, std::uint32_t max) {
    std::uint32_t n;
    const char* p;
    if (!u32(&n) || n > max || !take(n, &p)) return false;
    s->assign(p, n);
    return true;
  }
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

constexpr std::uint32_t kMaxHeaderString = 4096;

}  // namespace

std::string encode_state_header(const StateHeader& header, std::uint64_t llama_size) {
  std::string out(kStateMagic, sizeof kStateMagic);
  put_u32(out, header.format);
  out.append(reinterpret_cast<const char*>(header.model_hash.data()), header.model_hash.size());
  put_string(out, header.adapters);
  put_string(out, header.kv_type);
  put_string(out, header.layout);
  put_u32(out, static_cast<std::uint32_t>(header.tokens.size()));
  for (llama_token t : header.tokens) put_u32(out, static_cast<std::uint32_t>(t));
  put_u64(out, llama_size);
  return out;
}

std::string parse_state(std::string_view blob, ParsedState* out) {
  Reader r(blob);
  const char* p;
  if (!r.take(sizeof kStateMagic, &p) || std::memcmp(p, kStateMagic, sizeof kStateMagic) != 0) {
    return "not a state blob (bad magic)";
  }
  StateHeader& h = out->header;
  if (!r.u32(&h.format)) return "truncated header";
  if (h.format != kStateFormat) {
    return "state format " + std::to_string(h.format) + ", this executor reads " +
           std::to_string(kStateFormat);
  }
  if (!r.take(h.model_hash.size(), &p)) return "truncated header";
  std::memcpy(h.model_hash.data(), p, h.model_hash.size());
  if (!r.string(&h.adapters, kMaxHeaderString) || !r.string(&h.kv_type, kMaxHeaderString) ||
      !r.string(&h.layout, kMaxHeaderString)) {
    return "truncated or oversized header string";
  }
  std::uint32_t n_tokens;
  if (!r.u32(&n_tokens)) return "truncated header";
  if (n_tokens == 0 || n_tokens > r.left() / 4) return "bad token count";
  h.tokens.resize(n_tokens);
  for (std::uint32_t i = 0; i < n_tokens; ++i) {
    std::uint32_t t = 0;
    r.u32(&t);  // cannot fail: the count was checked against what is left
    h.tokens[i] = static_cast<llama_token>(t);
  }
  std::uint64_t llama_size;
  if (!r.u64(&llama_size)) return "truncated header";
  if (llama_size == 0 || llama_size != r.left()) {
    return "llama state length " + std::to_string(llama_size) + " does not match the " +
           std::to_string(r.left()) + " bytes that follow";
  }
  out->llama_offset = r.pos();
  out->llama_size = static_cast<std::size_t>(llama_size);
  return "";
}

}  // namespace memos::llama_exec
