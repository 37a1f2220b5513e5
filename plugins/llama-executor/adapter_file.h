// adapter_file.h — checking a LoRA adapter's GGUF against the executor's
// model before llama.cpp loads it.
//
// llama.cpp refuses a mismatched adapter with a line in its log and a null
// pointer; a user importing one needs to know which of its parts does not
// fit. So the file is read here first (gguf, data included: adapters are
// megabytes) and each check names what failed: not an adapter, another
// architecture, another base model (memos.base_model.sha256, written by
// memosd's own tools), a tensor the model lacks or of other dimensions, a
// pair missing one half, a value that is not finite. The header's counts
// are bounded before gguf sizes anything from them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace memos::llama_exec {

// The model's weight matrices, by name: what an adapter's pairs must fit.
struct ModelShapes {
  std::string architecture;
  std::string hash_hex;
  std::unordered_map<std::string, std::array<std::int64_t, 2>> matrices;
};

// Reads the tensor infos of the model's GGUF (no data). Throws
// std::invalid_argument if it cannot.
ModelShapes read_model_shapes(const std::string& model_path, const std::string& architecture,
                              const std::string& hash_hex);

struct AdapterFileFacts {
  std::string name;  // general.name; may be empty
  std::uint32_t tensors = 0, rank = 0;
  float alpha = 0;
};

// Bounds on what a file may claim before anything is sized from it.
constexpr std::int64_t kMaxAdapterTensors = 1 << 16;
constexpr std::int64_t kMaxAdapterKeys = 1 << 12;

// Checks the adapter at `path` against `model`. Throws
// std::invalid_argument saying what does not fit.
AdapterFileFacts check_adapter_file(const std::string& path, const ModelShapes& model);

}  // namespace memos::llama_exec
