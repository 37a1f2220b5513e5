// gguf_bytes.h — a GGUF file's bytes in memory, for what the executor
// makes (control vectors, distilled adapters) and hands to memosd, which
// keeps them in its blob store: no temporary file on the plugin's side.
#pragma once

#include <gguf.h>

#include <string>
#include <vector>

namespace memos::llama_exec {

// The file gguf_write_to_file would write: the metadata, padded to the
// alignment, then each tensor at its offset. `data[i]` holds the bytes of
// tensor i (gguf_get_tensor_size of them), in the order they were added.
std::string gguf_bytes(const gguf_context* gguf, const std::vector<const void*>& data);

}  // namespace memos::llama_exec
