// llama_handles.h — owning handles for llama.cpp's objects, so every path
// out of a function (an early return, an exception) frees them.
#pragma once

#include <ggml.h>
#include <gguf.h>
#include <llama.h>

#include <cstdint>
#include <memory>

namespace memos::llama_exec {

struct ModelFree {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
struct ContextFree {
  void operator()(llama_context* c) const { llama_free(c); }
};
struct SamplerFree {
  void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlFree {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
using ModelPtr = std::unique_ptr<llama_model, ModelFree>;
using GgufPtr = std::unique_ptr<gguf_context, GgufFree>;  // a GGUF file's metadata
using GgmlPtr = std::unique_ptr<ggml_context, GgmlFree>;  // and its tensors
using ContextPtr = std::unique_ptr<llama_context, ContextFree>;
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerFree>;

// A llama_batch is a struct of pointers returned by value, so it gets a
// small owner of its own rather than a unique_ptr.
class OwnedBatch {
 public:
  explicit OwnedBatch(std::int32_t capacity)
      : batch_(llama_batch_init(capacity, 0, 1)), capacity_(capacity) {}
  ~OwnedBatch() { llama_batch_free(batch_); }
  OwnedBatch(const OwnedBatch&) = delete;
  OwnedBatch& operator=(const OwnedBatch&) = delete;

  // Fills tokens[0, n) at positions first.., sequence 0; only the last one
  // produces logits (or embeddings) when `output_last`, every one when
  // `output_all`.
  llama_batch& fill(const llama_token* tokens, std::int32_t n, llama_pos first, bool output_last,
                    bool output_all = false) {
    for (std::int32_t i = 0; i < n; ++i) {
      batch_.token[i] = tokens[i];
      batch_.pos[i] = first + i;
      batch_.n_seq_id[i] = 1;
      batch_.seq_id[i][0] = 0;
      batch_.logits[i] = output_all || (output_last && i == n - 1);
    }
    batch_.n_tokens = n;
    return batch_;
  }
  std::int32_t capacity() const { return capacity_; }

 private:
  llama_batch batch_;
  std::int32_t capacity_;
};

// llama_backend_init() once per process, and llama.cpp's log reduced to its
// errors on stderr (a plugin host's stderr goes to memosd's log).
void init_backend_once();

}  // namespace memos::llama_exec
