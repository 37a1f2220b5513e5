#include "plugins/llama-executor/gguf_bytes.h"

#include <cstring>
#include <stdexcept>

namespace memos::llama_exec {

std::string gguf_bytes(const gguf_context* gguf, const std::vector<const void*>& data) {
  const auto n = static_cast<std::size_t>(gguf_get_n_tensors(gguf));
  if (data.size() != n) throw std::logic_error("gguf_bytes: one data pointer per tensor");
  std::string out(gguf_get_meta_size(gguf), '\0');
  gguf_get_meta_data(gguf, out.data());
  const std::size_t align = gguf_get_alignment(gguf);
  const auto padded = [align](std::size_t size) { return (size + align - 1) / align * align; };
  out.resize(padded(out.size()), '\0');
  const std::size_t base = out.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::int64_t>(i);
    const std::size_t at = base + gguf_get_tensor_offset(gguf, id);
    const std::size_t bytes = gguf_get_tensor_size(gguf, id);
    if (out.size() < at + bytes) out.resize(padded(at + bytes), '\0');
    std::memcpy(out.data() + at, data[i], bytes);
  }
  return out;
}

}  // namespace memos::llama_exec
