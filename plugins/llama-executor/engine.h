// engine.h — the executor: one llama.cpp context (sequence 0) that
// tokenizes, prefills a prompt into a state blob, and generates, starting
// from a stored state when one is given, or from a recent prompt of the
// same scope (still in the context, or its state in prompt_cache.h),
// whichever covers more of the prompt.
//
// Concurrency: there is one context, so calls are serialized by a mutex;
// concurrent calls queue in arrival order of the lock (memosd bounds how
// many it sends). Requests that are malformed throw std::invalid_argument
// (the plugin answers `invalid`); a state that cannot be used is never an
// error: it is ignored, counted and reported in stateStatus, and the prompt
// is decoded in full.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/llama-executor/adapter_cache.h"
#include "plugins/llama-executor/adapter_file.h"
#include "plugins/llama-executor/chat_format.h"
#include "plugins/llama-executor/control_vector.h"
#include "plugins/llama-executor/device_slots.h"
#include "plugins/llama-executor/distillation.h"
#include "plugins/llama-executor/llama_handles.h"
#include "plugins/llama-executor/loaded_model.h"
#include "plugins/llama-executor/prompt_cache.h"
#include "plugins/llama-executor/resident_cache.h"
#include "plugins/llama-executor/settings.h"
#include "plugins/llama-executor/staging_pool.h"
#include "plugins/llama-executor/state_blob.h"

namespace memos::llama_exec {

// What ExecutorCapabilities says.
struct ExecutorInfo {
  std::string model, model_hash, adapters, kv_type, layout;
  std::uint32_t state_format = kStateFormat;
  std::uint32_t context = 0, batch = 0, vocabulary = 0;
  // Where it runs (device_choice.h): "CPU" or llama.cpp's GPU name, its
  // description, why not a GPU under device = auto, the layers on the GPU.
  std::string device, device_description, device_note;
  std::uint32_t gpu_layers = 0, layers = 0;
  std::uint64_t device_memory_bytes = 0;  // the device's total (the host's on the CPU)
  // Resident states the KV cache itself holds (device_slots.h): at most
  // this many, within this many bytes of cells; what a cell takes.
  std::uint32_t device_state_sequences = 0;
  std::uint64_t device_state_budget = 0, kv_cell_bytes = 0;
};

struct PrefillResult {
  std::string state;
  std::uint32_t tokens = 0;
  double prefill_ms = 0;
};

struct SamplingParams {
  float temperature = 0;
  std::uint32_t top_k = 0;
  float top_p = 0;
  std::uint32_t seed = 0;
};

// A LoRA adapter a call runs with (plugin.capnp's AdapterRef).
struct AdapterInput {
  std::string path;
  std::string digest;  // raw SHA-256
  std::uint64_t size = 0;
  float scale = 1;
  std::string kind = "lora";  // or "cvec": a control vector
};

// What check_adapter() found (plugin.capnp's AdapterFacts).
struct AdapterFacts {
  std::string kind = "lora";
  std::string architecture, base_model, name;
  std::uint32_t tensors = 0, rank = 0;
  float alpha = 0;
};

// At most this many adapters in one call.
constexpr std::size_t kMaxAdaptersPerCall = 8;

struct GenerateInput {
  std::vector<llama_token> tokens;
  std::vector<AdapterInput> adapters;  // empty: the base model
  std::string state_path;              // "" : none
  std::string state_digest;            // raw SHA-256
  std::uint64_t state_size = 0;
  double state_utility = 0;  // memosd's worth of it: the resident set's order
  std::uint32_t max_tokens = 0;
  SamplingParams sampling;
  std::uint32_t export_tokens = 0;
  bool want_logits = false;
  std::uint32_t split_tokens = 0;
  // Who may reuse this prompt: a later call of the same scope may start
  // from it ("" : not kept, and nothing kept is reused).
  std::string cache_scope;
  // Streaming (either may be empty): prefill progress after each batch,
  // from (0, total) on, and each piece of the text as it is generated,
  // whole UTF-8 characters only. The pieces, joined, are the result's text.
  std::function<void(std::uint32_t done, std::uint32_t total)> on_prefill;
  std::function<void(std::string_view text)> on_text;
};

struct GenerateResult {
  std::string text;
  std::vector<llama_token> tokens;
  // reused: not decoded (from the state or a recent prompt); cached: of
  // them, those from a recent prompt of the scope (no state read).
  std::uint32_t prompt_tokens = 0, reused_tokens = 0, cached_tokens = 0;
  // "restored": the state's prefix is in the context, read from the state
  // or (cached_tokens) from a recent prompt that covers as much; "none";
  // "rejected: why".
  std::string state_status = "none";
  bool state_resident = false;
  double restore_ms = 0, prefill_ms = 0, first_token_ms = 0, total_ms = 0;
  std::string finish;
  std::vector<float> logits;
  std::string exported;
  double export_prefill_ms = 0;  // decoding the exported tokens not restored
};

// How well the model predicts texts (Engine::score): over every token of
// each after its first, the summed negative log-likelihood and how many
// the model's most likely next token gets right.
struct TextScore {
  double nll = 0;
  std::uint64_t tokens = 0, correct = 0;
  double perplexity() const { return tokens ? std::exp(nll / static_cast<double>(tokens)) : 0; }
  double accuracy() const {
    return tokens ? static_cast<double>(correct) / static_cast<double>(tokens) : 0;
  }
};

struct ExecutorCounters {
  ResidentStats resident;
  StagingStats staging;
  DeviceMemory device_memory;  // as of the last call's end
  SlotStats slots;             // states in the KV cache's own sequences
  std::uint64_t rejected = 0;
  std::uint32_t prompts_held = 0;   // recent prompts kept (prompt_cache.h)
  std::uint64_t prompt_hits = 0;    // calls that started from one
  std::uint64_t prompt_tokens = 0;  // tokens those calls did not decode
  AdapterStats adapters;
};

class Engine {
 public:
  using Warn = std::function<void(std::string_view)>;

  // Loads the model and creates the context; throws std::invalid_argument
  // (bad model, settings llama.cpp refuses).
  explicit Engine(const Settings& settings);

  const ExecutorInfo& info() const { return info_; }
  // Refuses text over kMaxTokenizeBytes.
  std::vector<llama_token> tokenize(std::string_view text, bool add_special,
                                    bool parse_special = false) const;
  // The block and the question in the model's chat template (chat_format.h).
  ChatTokens chat_tokens(std::string_view system, std::string_view user) const;
  // From an empty sequence, with `adapters` applied; kept for later calls
  // of `cache_scope` ("" : not) with the same adapters.
  PrefillResult prefill(const std::vector<llama_token>& tokens, const std::string& cache_scope,
                        const std::vector<AdapterInput>& adapters = {});
  // Checks an adapter file against the model (adapter_file.h), then has
  // llama.cpp load it, and keeps it loaded. Throws std::invalid_argument
  // saying what does not fit.
  AdapterFacts check_adapter(const AdapterInput& adapter);
  // A control vector from two sets of texts (control_vector.h), as a GGUF.
  // Throws std::invalid_argument (an empty side, too many texts, one too
  // long for the context).
  std::string control_vector(const std::vector<std::string>& positive,
                             const std::vector<std::string>& negative);
  GenerateResult generate(const GenerateInput& input, const Warn& warn);
  // How well the model, with `adapters`, predicts each text (tokenized
  // with BOS, cut to the context). Throws std::invalid_argument (a bad
  // adapter), std::runtime_error (llama.cpp failed).
  TextScore score(const std::vector<std::string>& texts,
                  const std::vector<AdapterInput>& adapters = {});

  // Distillation (distillation.h), one at a time, over a copy of the
  // model: begin returns its id, step runs one step of it, finish returns
  // the adapter's GGUF and forgets it, cancel forgets it. Throws
  // std::invalid_argument (begin: what Distillation refuses, or one is
  // open already; the others: no distillation of that id),
  // std::runtime_error (llama.cpp failed; the distillation is forgotten).
  std::uint64_t distill_begin(const std::vector<std::string>& texts, DistillOptions options);
  DistillProgress distill_step(std::uint64_t id);
  DistillProgress distill_progress(std::uint64_t id);
  std::string distill_finish(std::uint64_t id, const std::string& name);
  void distill_cancel(std::uint64_t id);
  // As of the end of the last call; never waits for a call in progress.
  ExecutorCounters counters();

  static constexpr std::size_t kMaxTokenizeBytes = 4u << 20;

 private:
  struct Restored {
    std::string why;  // "" : usable
    std::uint32_t match = 0;
    bool resident = false;
    bool read = false;     // restored into sequence 0
    bool cleared = false;  // refused after sequence 0 was emptied
    bool in_slot = false;  // shared from a device-resident state
  };

  void check_tokens(const std::vector<llama_token>& tokens) const;
  // Sets the context's adapters to `adapters` (loading those not loaded)
  // and returns the set's canonical text (memos/adapter_set.h), which
  // states and recent prompts are keyed by. A set already applied costs a
  // comparison. Throws std::invalid_argument for a bad reference (digest,
  // scale, a duplicate, a file that does not match its digest or that
  // llama.cpp refuses) or when adapters are off.
  const std::string& apply_adapters(const std::vector<AdapterInput>& adapters);
  // Checks the adapter's file against its size and digest. Throws
  // std::invalid_argument.
  void verify_adapter_file(const AdapterInput& adapter) const;
  // Has llama.cpp load a verified adapter file. Throws std::invalid_argument.
  AdapterPtr load_adapter(const AdapterInput& adapter);
  // The model's shapes, read once (for checking adapters).
  const ModelShapes& shapes();
  // The key recent prompts are kept under: the scope and the adapter set.
  std::string prompt_scope(const std::string& scope) const;
  // The open distillation of that id; throws std::invalid_argument if none.
  // Called with mutex_ held.
  Distillation& open_distillation(std::uint64_t id);
  // Empties sequence 0 (and forgets what it held).
  void clear();
  // Starts sequence 0 with the first `cached` tokens of a recent prompt of
  // the scope: the one it still holds (`live`), else `kept`'s state
  // restored. False (and sequence 0 empty) if llama.cpp refuses that state.
  bool start_from_recent(std::uint32_t cached, std::uint32_t live, const PromptCache::Match& kept);
  // After a call: sequence 0 holds exactly `prompt`, which is kept for
  // `scope` (its state copied into the prompt cache unless already there).
  void keep_prompt(const std::string& scope, const std::vector<llama_token>& prompt);
  // llama.cpp's bytes of sequence 0's state, `size` of them
  // (llama_state_seq_get_size(), which walks the whole state to count).
  std::string sequence_bytes(std::size_t size);
  // Decodes tokens[from, to) at their positions, `batch_` at a time
  // counting from `from`; the last one (to - 1) produces logits if
  // `logits_last`. `after_batch`, if set, is told the end of each batch
  // decoded. Throws std::runtime_error if llama.cpp fails.
  void decode(const std::vector<llama_token>& tokens, std::uint32_t from, std::uint32_t to,
              bool logits_last, const std::function<void(std::uint32_t end)>& after_batch = {});
  // The state blob of sequence 0 covering `tokens` (which it holds).
  std::string export_state(const std::vector<llama_token>& tokens);
  // Reads and checks a stored state and, when it covers more of the prompt
  // (up to `limit` tokens) than the `cached` tokens a recent prompt gives,
  // restores it into sequence 0. On a refusal says why; sequence 0 is left
  // as it was unless `cleared`.
  Restored restore(const GenerateInput& input, std::uint32_t cached, std::uint32_t limit);
  // restore() of a state held in the KV cache's own sequences: its cells
  // shared with sequence 0, checked as a blob's would be.
  Restored restore_from_slot(const SlotState& held, const GenerateInput& input,
                             std::uint32_t cached, std::uint32_t limit);
  // After sequence 0 was filled from a blob: keeps its cells in a sequence
  // of their own too, making room from states worth less.
  void keep_in_slot(const GenerateInput& input, const StateHeader& header);
  // Fills the empty sequence 0 with llama.cpp's bytes of a state of
  // `tokens` tokens; false when llama.cpp refuses them (after one retry
  // without the device-resident states, whose cells may split the free
  // ones). Sequence 0 may then hold part of them: see wipe_memory().
  bool set_sequence_0(const std::uint8_t* bytes, std::size_t size, std::size_t tokens);
  // Empties the whole KV cache, data too, and forgets the device-resident
  // states (after a refused state: none of its values may linger).
  void wipe_memory();
  Blob load_blob(const GenerateInput& input, bool* resident, std::string* why);
  void sample(const GenerateInput& input, std::uint32_t max_tokens, GenerateResult& out,
              double start_us);

  // Learns where llama.cpp's state bytes hold their cell count and how
  // their size grows per cell (see state_fits()); on failure, leaves
  // cells_offset_ unset and the check off.
  void calibrate_state_shape();
  // Whether llama.cpp's bytes of a parsed state hold as many cells as its
  // header has tokens. llama.cpp sizes buffers from that count before it
  // checks it against the bytes, so a wrong one must not reach it.
  bool state_fits(std::string_view blob, const ParsedState& parsed) const;

  // Copies the counters for counters(); called with mutex_ held.
  void publish();
  struct Publisher {
    Engine& engine;
    ~Publisher() { engine.publish(); }
  };

  Settings settings_;
  LoadedModel model_;
  ContextPtr context_;
  ExecutorInfo info_;
  std::uint32_t n_ctx_ = 0, batch_ = 0;

  std::mutex counters_mutex_;  // guards published_ only
  ExecutorCounters published_;
  std::mutex mutex_;  // one call at a time on the context; guards below
  std::unique_ptr<OwnedBatch> batch_buffer_;
  StagingPool staging_;  // before resident_, whose blobs it gave
  ResidentCache resident_;
  DeviceSlots slots_;  // device-resident states: sequences 1..n of the context
  PromptCache prompts_;
  ModelShapes shapes_;  // what an adapter must fit
  AdapterCache adapters_;
  std::unique_ptr<Distillation> distillation_;
  std::uint64_t distillation_id_ = 0, next_distillation_ = 1;
  std::string applied_set_;      // canonical text of the context's adapters; "" : none
  bool vector_applied_ = false;  // a control vector is set on the context
  // What sequence 0 holds between calls, for the next call of its scope.
  std::string live_scope_;  // "" : nothing reusable
  std::vector<llama_token> live_tokens_;
  std::uint64_t rejected_ = 0, prompt_hits_ = 0, prompt_tokens_ = 0;
  std::size_t cells_offset_ = SIZE_MAX;  // SIZE_MAX: not learned
  std::size_t state_base_ = 0, state_per_cell_ = 0;
  std::string state_prefix_;  // the bytes before the cell count
};

}  // namespace memos::llama_exec
