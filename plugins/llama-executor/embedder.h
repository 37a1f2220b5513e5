// embedder.h — text embeddings from a GGUF model: each text is tokenized
// with BOS, decoded with embeddings on and mean pooling, and L2-normalized.
//
// One context, so calls are serialized by a mutex (concurrent calls queue).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/llama-executor/llama_handles.h"
#include "plugins/llama-executor/loaded_model.h"
#include "plugins/llama-executor/settings.h"

namespace memos::llama_exec {

class Embedder {
 public:
  // Throws std::invalid_argument (bad model, context refused).
  explicit Embedder(const Settings& settings);

  // "gguf:<name>:<first 12 hex digits of the model hash>"
  const std::string& model_id() const { return model_id_; }
  std::uint32_t dimension() const { return static_cast<std::uint32_t>(model_.n_embd); }
  std::uint32_t max_batch() const { return max_batch_; }

  // Appends dimension() floats for `text` to `out`. Texts longer than the
  // context are truncated to it.
  void embed(std::string_view text, std::vector<float>& out);

 private:
  LoadedModel model_;
  ContextPtr context_;
  std::string model_id_;
  std::uint32_t n_ctx_ = 0, max_batch_ = 0;
  std::mutex mutex_;  // one text at a time on the context; guards below
  std::unique_ptr<OwnedBatch> batch_;
};

}  // namespace memos::llama_exec
