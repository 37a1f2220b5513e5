#include "plugins/llama-executor/embedder.h"

#include <cmath>
#include <stdexcept>

namespace memos::llama_exec {

Embedder::Embedder(const Settings& settings)
    : model_(load_model(settings)), max_batch_(settings.max_batch) {
  n_ctx_ = context_tokens(model_, settings);
  // Pooling needs the whole text in one ubatch.
  llama_context_params p = context_params(settings, n_ctx_, n_ctx_);
  p.embeddings = true;
  p.pooling_type = LLAMA_POOLING_TYPE_MEAN;
  context_.reset(llama_init_from_model(model_.model.get(), p));
  if (!context_) {
    throw std::invalid_argument("llama.cpp cannot create an embedding context for " +
                                settings.model);
  }
  n_ctx_ = std::min(n_ctx_, llama_n_ctx(context_.get()));
  batch_ = std::make_unique<OwnedBatch>(static_cast<std::int32_t>(n_ctx_));
  model_id_ = "gguf:" + model_.name + ":" + model_.hash_hex.substr(0, 12);
}

void Embedder::embed(std::string_view text, std::vector<float>& out) {
  std::vector<llama_token> tokens(text.size() + 8);
  int32_t n = llama_tokenize(model_.vocab, text.data(), static_cast<int32_t>(text.size()),
                             tokens.data(), static_cast<int32_t>(tokens.size()), true, false);
  if (n < 0) throw std::runtime_error("llama.cpp cannot tokenize the text");
  tokens.resize(std::min<std::size_t>(static_cast<std::size_t>(n), n_ctx_));
  if (tokens.empty()) tokens.push_back(llama_vocab_bos(model_.vocab));

  std::lock_guard lock(mutex_);
  llama_context* ctx = context_.get();
  llama_memory_clear(llama_get_memory(ctx), true);
  llama_batch& b =
      batch_->fill(tokens.data(), static_cast<std::int32_t>(tokens.size()), 0, false, true);
  if (llama_decode(ctx, b) != 0) throw std::runtime_error("llama_decode failed for an embedding");
  const float* pooled = llama_get_embeddings_seq(ctx, 0);
  if (!pooled) throw std::runtime_error("llama.cpp returned no pooled embedding");
  double norm = 0;
  for (int32_t i = 0; i < model_.n_embd; ++i) norm += double(pooled[i]) * pooled[i];
  const double scale = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
  for (int32_t i = 0; i < model_.n_embd; ++i) {
    out.push_back(static_cast<float>(pooled[i] * scale));
  }
}

}  // namespace memos::llama_exec
