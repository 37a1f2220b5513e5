// model_hash.h — the model's content hash (SHA-256 of the GGUF file), which
// every activation is keyed by.
//
// Hashing a GB-sized model takes seconds, so with a state folder the result
// is remembered in <state_dir>/model-hashes, one line per file:
//   <hex hash> <size> <mtime ns> <inode> <path>
// and reused while the file's size, mtime and inode are unchanged. The file
// is rewritten whole through a temporary file and rename(), so a crash
// leaves the old list or the new one, never a torn line.
#pragma once

#include <string>

#include "plugins/llama-executor/sha256.h"

namespace memos::llama_exec {

struct ModelHash {
  Digest digest{};
  bool from_cache = false;  // read from model-hashes, not computed
};

// `state_dir` "" : compute it every time. Throws std::runtime_error if the
// model cannot be read; a cache that cannot be written is only skipped.
ModelHash model_content_hash(const std::string& model_path, const std::string& state_dir);

}  // namespace memos::llama_exec
