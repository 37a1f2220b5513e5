// f32_copy.h — an F32 copy of a model, for distillation (distillation.h).
//
// llama.cpp's training API trains F32 tensors only. A model whose weights
// are F16, BF16 or quantized is converted by llama.cpp itself
// (llama_model_quantize to LLAMA_FTYPE_ALL_F32, which dequantizes every
// weight matrix) into a scratch file that lives only until the copy is
// loaded. Its size is known from the model's tensor infos before anything
// is written, so a copy that would not fit the memory or the scratch
// folder is refused with the figures.
#pragma once

#include <ggml.h>

#include <cstdint>
#include <string>

namespace memos::llama_exec {

// What the model whose tensor infos `shapes` holds needs: whether any
// weight matrix (2 or more dimensions) is not F32, and the bytes of its
// weights once all are.
struct F32Need {
  bool convert = false;
  std::uint64_t bytes = 0;
};
F32Need f32_need(ggml_context* shapes);

// A file removed when this goes (RAII); empty path: none.
class ScratchFile {
 public:
  ScratchFile() = default;
  explicit ScratchFile(std::string path) : path_(std::move(path)) {}
  ~ScratchFile();
  ScratchFile(ScratchFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchFile& operator=(ScratchFile&&) = delete;
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes the F32 copy of `model_path` (`need` from f32_need) into
// `scratch_dir` ("" : the system's temporary folder), first removing copies
// that executors which died mid-conversion left there. Throws
// std::invalid_argument if the copy would not fit the available memory
// (it is loaded whole) or the folder's free space, saying how much it
// needs; std::runtime_error if llama.cpp cannot convert the model.
ScratchFile write_f32_copy(const std::string& model_path, const F32Need& need,
                           const std::string& scratch_dir, int threads);

}  // namespace memos::llama_exec
