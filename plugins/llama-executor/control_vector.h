// control_vector.h — control vectors: a direction per layer added to the
// model's hidden state (llama_set_adapter_cvec), read from and written as
// llama.cpp's control vector GGUF (general.architecture = controlvector,
// one F32 tensor direction.N of n_embd values for each layer N from 1).
//
// Derived here from two sets of texts: the per-layer mean of the hidden
// states (each layer's output, l_out-N, over every token of a text, then
// over the texts) of the positive set less that of the negative set. Why
// the mean difference and not llama.cpp's PCA of pair differences: it needs
// no pairing of the sets and no iterations, and for a set of memories that
// share a trait it is the direction that separates them on average.
#pragma once

#include <llama.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugins/llama-executor/adapter_file.h"

namespace memos::llama_exec {

struct ControlVector {
  std::int32_t n_embd = 0;
  std::int32_t layers = 0;  // directions for layers 1..layers
  std::vector<float> data;  // layers x n_embd, layer 1 first
};

// At most this many texts on each side of a derivation.
constexpr std::size_t kMaxControlTexts = 256;

// Whether the GGUF at `path` says it is a control vector (its
// general.architecture); false for anything else, a LoRA included.
bool is_control_vector_file(const std::string& path);

// Reads and checks a control vector against the model: F32 direction.N
// tensors of the model's n_embd values, N in 1..n_layer - 1, finite values,
// controlvector.model_hint (if any) the model's architecture. Throws
// std::invalid_argument saying what does not fit.
ControlVector read_control_vector(const std::string& path, const ModelShapes& model,
                                  std::int32_t n_embd, std::int32_t n_layer);

// The control vector's GGUF bytes, its model hint `architecture`.
std::string encode_control_vector(const ControlVector& cv, const std::string& architecture);

// The mean difference of `positive` and `negative` (token lists, each one
// text, at most `n_ctx` tokens) through `model`, decoded in a context of
// its own with `threads`. Throws std::invalid_argument (an empty side, a
// text too long) or std::runtime_error (llama.cpp failed).
ControlVector derive_control_vector(llama_model* model,
                                    const std::vector<std::vector<llama_token>>& positive,
                                    const std::vector<std::vector<llama_token>>& negative,
                                    std::uint32_t n_ctx, int threads);

}  // namespace memos::llama_exec
