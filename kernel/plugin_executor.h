// plugin_executor.h — a model executor plugin as memosd uses it: tokenize,
// prefill a memory block into a state, and generate with or without a
// stored state (ipc/schema/plugin.capnp, "executor").
//
// Calls may be long (a prefill of thousands of tokens takes seconds to
// minutes on a CPU); they wait at most the configured timeout. An executor
// whose host dies mid-call fails the call with `retryable` set; memos-plugin-
// host starts it again for the next one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/status.h"
#include "memcube/activation.h"
#include "memos/vocabulary.h"
#include "plugins/loader/channel.h"

namespace memos::kernel {

using memos::ActivationOutcome;

// What the executor runs, as it describes itself.
struct ExecutorInfo {
  std::string model;
  store::ActivationKey key;  // what its states depend on
  std::uint32_t context_tokens = 0;
  std::uint32_t batch_tokens = 0;
  std::uint32_t vocabulary = 0;
  // Where it runs (plugin.capnp ExecutorCapabilities.device...).
  std::string device, device_description, device_note;
  std::uint32_t gpu_layers = 0, layers = 0;
  std::uint64_t device_memory_bytes = 0;
};

struct StateRef {
  std::string path;  // the blob file
  store::Digest digest{};
  std::uint64_t size = 0;
  // Its worth as memosd's eviction ranks it (ActivationTier::state_ref): the
  // executor's resident set drops the least useful first.
  double utility = 0;
};

// A LoRA adapter a call runs with: a parametric item's blob.
struct AdapterRef {
  std::string path;  // the blob file
  store::Digest digest{};
  std::uint64_t size = 0;
  float scale = 1;
  std::string kind = "lora";  // or "cvec": a control vector
};

// The canonical text of a set of adapters (memos/adapter_set.h): what the
// activation key's `adapters` holds, so a state is only found again under
// the same set. Sorts `adapters` into the set's order.
std::string adapter_set_text(std::vector<AdapterRef>* adapters);

// What the executor found checking an adapter (plugin.capnp AdapterFacts).
struct AdapterFacts {
  std::string kind = "lora";  // or "cvec"
  std::string architecture, base_model, name;
  std::uint32_t tensors = 0, rank = 0;
  float alpha = 0;
};

struct GenerateArgs {
  std::vector<std::int32_t> tokens;
  std::vector<AdapterRef> adapters;  // empty: the base model
  const StateRef* state = nullptr;   // none
  std::uint32_t max_tokens = 0;
  float temperature = 0;
  std::uint32_t top_k = 0;
  float top_p = 0;
  std::uint32_t seed = 0;
  std::uint32_t export_tokens = 0;
  // Decode [0, split) and [split, end) as separate runs of batches, as a
  // restore of a split-token state would: results then match bit for bit
  // whether or not a state was restored.
  std::uint32_t split_tokens = 0;
  bool want_logits = false;
  // Whose prompt this is (cache_scope()): the executor may keep it and
  // start a later call of the same scope from it. "" : nothing kept or
  // reused (a measurement that must decode everything).
  std::string cache_scope;
  // Streaming, when either is set: prefill progress (tokens decoded of
  // those to decode) and each piece of the generated text, as the executor
  // reports them, on whichever thread it reports them, before generate()
  // returns. The pieces, joined, are GenerateResult::text. An executor of
  // plugin ABI minor 0 reports none: then only the result comes.
  std::function<void(std::uint32_t done, std::uint32_t total)> on_prefill;
  std::function<void(std::string_view text)> on_text;
};

struct GenerateResult {
  std::string text;
  std::vector<std::int32_t> tokens;
  std::uint32_t prompt_tokens = 0;
  std::uint32_t reused_tokens = 0;  // not decoded: from the state or the executor's context
  std::uint32_t cached_tokens = 0;  // of them, still in the context from the scope's last calls
  // What became of GenerateArgs::state: restored, refused (`rejected` says
  // why) or, with none given, neither. Never `stored`.
  ActivationOutcome restore;
  bool state_resident = false;
  double restore_ms = 0, prefill_ms = 0, first_token_ms = 0, total_ms = 0;
  std::string finish;
  std::vector<float> logits;
  std::string exported;          // the state after export_tokens, if asked
  double export_prefill_ms = 0;  // decoding the exported tokens (restored ones excluded)
};

// What decoding a whole block of `block_tokens` takes, from a generation
// that exported its state: measured on the tokens it decoded, scaled up
// when the first ones came from a restored state. 0: unknown.
double block_prefill_ms(const GenerateResult& gr, std::size_t block_tokens);

struct ExecutorStatus {
  std::uint32_t resident_states = 0;
  std::uint64_t resident_bytes = 0, resident_budget_bytes = 0;
  std::uint64_t resident_hits = 0, resident_misses = 0, rejected_states = 0;
  std::uint32_t prompts_held = 0;                        // in the executor's context
  std::uint64_t prompt_hits = 0, prompt_hit_tokens = 0;  // calls that started from one
  std::uint32_t adapters_loaded = 0;
  std::uint64_t adapter_bytes = 0, adapter_budget_bytes = 0, adapter_loads = 0;
  std::uint64_t device_free_bytes = 0, device_total_bytes = 0;
  std::uint32_t resident_pinned_states = 0;  // resident states in page-locked memory
  std::uint64_t resident_pinned_bytes = 0;
  std::uint64_t pinned_bytes = 0, pinned_budget_bytes = 0, staged_ordinary = 0;
  // Resident states in the KV cache's own sequences (activation.gpu_max_mb).
  std::uint32_t device_states = 0;
  std::uint64_t device_budget_bytes = 0, device_state_bytes = 0, device_state_hits = 0;
};

// The scope under which the executor may keep and reuse a tenant's prompts
// (GenerateArgs::cache_scope): one per tenant, never shared, since a
// reused prompt answers faster and that speed would tell a tenant what
// another asked.
std::string cache_scope(store::TenantId tenant);

class PluginExecutor {
 public:
  // `channel` reaches an executor that described itself as `info`; calls
  // wait at most `timeout`, and replies may hold up to `max_reply_bytes`
  // (an exported state).
  PluginExecutor(std::string name, std::shared_ptr<plugins::PluginChannel> channel,
                 ExecutorInfo info, std::chrono::milliseconds timeout, std::size_t max_reply_bytes)
      : name_(std::move(name)),
        channel_(std::move(channel)),
        info_(std::move(info)),
        timeout_(timeout),
        max_reply_bytes_(max_reply_bytes) {}

  const ExecutorInfo& info() const { return info_; }
  const std::string& name() const { return name_; }

  // Thread-safe. Errors (call_plugin): unavailable, retryable, when the
  // executor's host died or timed out and restarts; internal for the
  // plugin's own error or a reply that does not decode.
  // The memory block (`system`) and the question (`user`) in the model's
  // chat template, tokenized apart; `format` says which layout was used.
  Status chat_tokens(const std::string& system, const std::string& user,
                     std::vector<std::int32_t>* block, std::vector<std::int32_t>* question,
                     std::string* format) const;
  // The state of `tokens` decoded from an empty sequence under `adapters`;
  // the executor may keep the prompt for `cache_scope` ("" : not).
  Status prefill(const std::vector<std::int32_t>& tokens, const std::string& cache_scope,
                 std::string* state, double* prefill_ms,
                 const std::vector<AdapterRef>& adapters = {}) const;
  Status generate(const GenerateArgs& args, GenerateResult* out) const;
  Status status(ExecutorStatus* out) const;
  // Checks an adapter file against the executor's model and loads it.
  // Errors: bad_request (the executor refuses it: its message says which
  // part does not fit), and call_plugin's.
  Status check_adapter(const AdapterRef& adapter, AdapterFacts* out) const;
  // A control vector (its GGUF) from two sets of texts: the per-layer mean
  // hidden state of `positive` less `negative`'s. Errors: bad_request (the
  // executor refuses the texts), and call_plugin's.
  Status control_vector(const std::vector<std::string>& positive,
                        const std::vector<std::string>& negative, std::string* gguf) const;
  // Distillation (plugin.capnp DistillRequest): begin readies one over
  // `texts` and gives its id; each step runs one step of it; finish gives
  // a done one's adapter (GGUF) and has the executor forget it; cancel
  // forgets it. Errors: bad_request (the executor refuses: texts, options,
  // a model it cannot train, an unknown id), and call_plugin's (a host that
  // died forgot the distillation with it).
  struct DistillOptions {
    std::uint32_t rank = 0, steps = 0;  // 0: the executor's defaults
    float learning_rate = 0;
  };
  struct DistillProgress {
    std::uint64_t id = 0;
    std::uint32_t done = 0, total = 0, tokens = 0;
    float loss = 0;
  };
  Status distill_begin(const std::vector<std::string>& texts, const DistillOptions& options,
                       DistillProgress* out) const;
  Status distill_step(std::uint64_t id, DistillProgress* out) const;
  Status distill_finish(std::uint64_t id, const std::string& name, std::string* gguf) const;
  Status distill_cancel(std::uint64_t id) const;
  // memosd is stopping: the call in flight (a long prefill, say) fails now
  // rather than holding the shutdown (isolated executors only).
  void stop() { channel_->stop(); }

 private:
  std::string name_;
  std::shared_ptr<plugins::PluginChannel> channel_;
  ExecutorInfo info_;
  std::chrono::milliseconds timeout_;
  std::size_t max_reply_bytes_;
};

}  // namespace memos::kernel
