// state_blob.h — the executor's state blob: our header, then the bytes of
// llama_state_seq_get_data() for sequence 0.
//
// Little-endian throughout:
//   "MEMOSKV1"                      8 bytes, magic
//   format                          u32 (kStateFormat)
//   model hash                      32 bytes, raw SHA-256 of the GGUF
//   adapters, kv type, layout       each u32 length + bytes
//   token count                     u32, then that many i32 token ids
//   llama state length              u64, then exactly that many bytes
//
// Everything a restore depends on is in the header, so the executor refuses
// a blob made by another model, KV type, layout or build before llama.cpp
// ever reads its bytes.
#pragma once

#include <llama.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/llama-executor/sha256.h"

namespace memos::llama_exec {

constexpr std::uint32_t kStateFormat = 1;
constexpr char kStateMagic[8] = {'M', 'E', 'M', 'O', 'S', 'K', 'V', '1'};

struct StateHeader {
  std::uint32_t format = kStateFormat;
  Digest model_hash{};
  std::string adapters, kv_type, layout;
  std::vector<llama_token> tokens;
};

// The header's bytes for a llama state of `llama_size` bytes, which the
// caller appends (written straight into the blob, no copy of a big state).
std::string encode_state_header(const StateHeader& header, std::uint64_t llama_size);

struct ParsedState {
  StateHeader header;
  std::size_t llama_offset = 0;  // where llama.cpp's bytes start in the blob
  std::size_t llama_size = 0;
};

// Reads the header of `blob`, bounds-checked. Returns "" or why it is not a
// state blob (never throws, whatever the bytes).
std::string parse_state(std::string_view blob, ParsedState* out);

}  // namespace memos::llama_exec
