// distillation.h — plaintext memories into a LoRA adapter.
//
// A Distillation fine-tunes selected weight matrices of a copy of the base
// model on the memories' text with llama.cpp's training API
// (llama_opt_init, llama_opt_epoch: AdamW, cross entropy on the next
// token), then factors each matrix's change into a rank-r LoRA pair
// (low_rank.h). Why train the matrices and factor afterwards rather than
// train a LoRA: the pinned llama.cpp trains a model's own F32 tensors and
// nothing else, and the truncated SVD of the change is the closest rank-r
// adapter to it.
//
// It works in steps, so that the executor's caller can interleave chats:
// first `steps` training steps (one window of `window` tokens forward and
// backward each), then one step per trained matrix to factor it. Nothing
// of it touches the executor's own model or context.
//
// llama.cpp trains F32 tensors only, so a model whose weights are F16,
// BF16 or quantized is first converted to an F32 copy in a scratch file
// (llama_model_quantize to ALL_F32, which dequantizes), loaded, and the
// file removed at once. The adapter learns the change from the dequantized
// weights, which are the values the executor's model computes with, and is
// bound to the executor's model (its hash), not to the copy.
//
// Cost: the copy's weights in memory (not mapped: the optimizer writes
// them; for a model that is not F32, 4 bytes a weight, and as much on disk
// while it is converted), AdamW's two moments and the original values of
// every trained matrix (4 floats an element in all), and a training
// context. A copy larger than the memory or the scratch folder's free
// space is refused before anything is written.
#pragma once

#include <llama.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plugins/llama-executor/llama_handles.h"
#include "plugins/llama-executor/low_rank.h"

namespace memos::llama_exec {

struct DistillOptions {
  std::uint32_t rank = 8;    // of each LoRA pair, 1..kMaxDistillRank
  std::uint32_t steps = 40;  // training steps, 1..kMaxDistillSteps
  float learning_rate = 1e-3f;
  // The block matrices trained (and adapted): ggml names less "blk.N." and
  // ".weight".
  std::vector<std::string> matrices = {"attn_q", "attn_v", "attn_output", "ffn_down"};
  // Of the last this many blocks; 0: as many as the training graph holds
  // (train_blocks()).
  std::uint32_t blocks = 0;
  int threads = 2;
  // Where an F32 copy of a model that is not F32 is written while it is
  // converted ("": the system's temporary folder).
  std::string scratch_dir;
};

constexpr std::uint32_t kMaxDistillRank = 256;

// The blocks trained by default, the last ones of `n_layer`. llama.cpp
// sizes a training graph like an inference one (8 nodes a model tensor, at
// least 1024), and the backward pass adds about 100 nodes for each block
// the gradient flows through, from the first trained one up: past that
// size ggml aborts the process. A third of the blocks (all of a model of
// up to 6) keeps well inside it, and the top blocks are where a change
// reaches the output most directly.
std::uint32_t train_blocks(std::uint32_t n_layer);
constexpr std::uint32_t kMaxDistillSteps = 100000;
constexpr std::size_t kMaxDistillTexts = 100000;
constexpr std::size_t kMaxDistillTokens = 4u << 20;

struct DistillProgress {
  std::uint32_t done = 0, total = 0;  // steps: training, then one a matrix
  float loss = 0;                     // the last training step's, per token
  std::uint32_t tokens = 0;           // the texts', all together
};

class Distillation {
 public:
  // Loads the copy of `model_path` (whose SHA-256 is `base_model_hex`, its
  // architecture `architecture`), converted to F32 if it is not, and
  // readies the optimizer. Throws std::invalid_argument: no texts or
  // tokens, too many, options out of range, no matrix of the model matches,
  // or its F32 copy would not fit the memory or the scratch folder;
  // std::runtime_error if llama.cpp fails to convert or load it.
  Distillation(const std::string& model_path, std::string base_model_hex, std::string architecture,
               const std::vector<std::vector<llama_token>>& texts, const DistillOptions& options);
  ~Distillation();
  Distillation(const Distillation&) = delete;
  Distillation& operator=(const Distillation&) = delete;

  // Runs the next step. Throws std::logic_error when done().
  DistillProgress step();
  bool done() const { return progress_.done >= progress_.total; }
  const DistillProgress& progress() const { return progress_; }
  // The adapter's GGUF bytes (general.type adapter, adapter.type lora,
  // alpha = rank, memos.base_model.sha256, general.name `name`). Throws
  // std::logic_error unless done().
  std::string adapter(const std::string& name) const;

 private:
  struct Trained {
    ggml_tensor* tensor = nullptr;
    std::string name;
    std::int64_t cols = 0, rows = 0;  // ggml ne[0], ne[1]
    std::vector<float> before;
    LowRank factors;
  };
  static bool select(const ggml_tensor* tensor, void* self);
  void train_step();
  void factor(Trained& t);

  DistillOptions options_;
  std::string base_model_, architecture_;
  ModelPtr model_;
  ContextPtr context_;
  std::vector<llama_token> stream_;  // the texts, packed, each from BOS
  std::uint32_t window_ = 0;         // tokens a training sequence holds
  std::size_t next_window_ = 0;
  std::vector<std::string> wanted_;  // full names of the matrices to train
  std::vector<Trained> trained_;
  DistillProgress progress_;
};

}  // namespace memos::llama_exec
