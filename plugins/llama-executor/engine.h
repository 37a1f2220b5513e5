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

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/llama-executor/chat_format.h"
#include "plugins/llama-executor/llama_handles.h"
#include "plugins/llama-executor/loaded_model.h"
#include "plugins/llama-executor/prompt_cache.h"
#include "plugins/llama-executor/resident_cache.h"
#include "plugins/llama-executor/settings.h"
#include "plugins/llama-executor/state_blob.h"

namespace memos::llama_exec {

// What ExecutorCapabilities says.
struct ExecutorInfo {
  std::string model, model_hash, adapters, kv_type, layout;
  std::uint32_t state_format = kStateFormat;
  std::uint32_t context = 0, batch = 0, vocabulary = 0;
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

struct GenerateInput {
  std::vector<llama_token> tokens;
  std::string state_path;    // "" : none
  std::string state_digest;  // raw SHA-256
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

struct ExecutorCounters {
  ResidentStats resident;
  std::uint64_t rejected = 0;
  std::uint32_t prompts_held = 0;   // recent prompts kept (prompt_cache.h)
  std::uint64_t prompt_hits = 0;    // calls that started from one
  std::uint64_t prompt_tokens = 0;  // tokens those calls did not decode
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
  // From an empty sequence; kept for later calls of `cache_scope` ("" : not).
  PrefillResult prefill(const std::vector<llama_token>& tokens, const std::string& cache_scope);
  GenerateResult generate(const GenerateInput& input, const Warn& warn);
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
  };

  void check_tokens(const std::vector<llama_token>& tokens) const;
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
  bool state_fits(const std::string& blob, const ParsedState& parsed) const;

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
  ResidentCache resident_;
  PromptCache prompts_;
  // What sequence 0 holds between calls, for the next call of its scope.
  std::string live_scope_;  // "" : nothing reusable
  std::vector<llama_token> live_tokens_;
  std::uint64_t rejected_ = 0, prompt_hits_ = 0, prompt_tokens_ = 0;
  std::size_t cells_offset_ = SIZE_MAX;  // SIZE_MAX: not learned
  std::size_t state_base_ = 0, state_per_cell_ = 0;
  std::string state_prefix_;  // the bytes before the cell count
};

}  // namespace memos::llama_exec
