#include "plugins/llama-executor/engine.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include "memos/adapter_set.h"

#include "plugins/llama-executor/utf8.h"

#ifndef MEMOS_LLAMA_BUILD
#define MEMOS_LLAMA_BUILD "unknown"
#endif

namespace memos::llama_exec {

namespace {

double now_us() {
  return static_cast<double>(llama_time_us());
}

// Everything the bytes of llama_state_seq_get_data() depend on besides the
// model and the KV type: the llama.cpp build (its serialization), the
// number of layers, the K and V row widths, and whether V is stored
// transposed (without flash attention) or not.
std::string layout_of(const LoadedModel& m, bool flash_attention) {
  return std::string("llama.cpp ") + MEMOS_LLAMA_BUILD + "; layers " + std::to_string(m.n_layer) +
         "; k " + std::to_string(m.n_head_kv * m.head_dim_k) + "; v " +
         std::to_string(m.n_head_kv * m.head_dim_v) + (flash_attention ? "; fa" : "; v-trans");
}

// Bytes one cell of the KV cache takes: every layer's K and V rows.
std::uint64_t kv_cell_bytes(const LoadedModel& m, ggml_type type) {
  const auto k = static_cast<std::int64_t>(m.n_head_kv) * m.head_dim_k;
  const auto v = static_cast<std::int64_t>(m.n_head_kv) * m.head_dim_v;
  return static_cast<std::uint64_t>(m.n_layer) * (ggml_row_size(type, k) + ggml_row_size(type, v));
}

// Device-resident states at most (sequences): few enough that the scans in
// DeviceSlots stay trivial, and within llama.cpp's sequence limit.
constexpr std::uint64_t kMaxDeviceStates = 64;

}  // namespace

Engine::Engine(const Settings& settings)
    : settings_(settings),
      model_(load_model(settings)),
      staging_(model_.device.gpu != nullptr, settings.pinned_bytes),
      resident_(settings.resident_bytes),
      prompts_(settings.prompt_cache_bytes),
      adapters_(settings.max_adapter_bytes) {
  n_ctx_ = context_tokens(model_, settings_);
  batch_ = std::min(settings_.batch, n_ctx_);
  // A quantized V cache needs flash attention in llama.cpp; f16 and f32
  // keep it off (V transposed), the layout llama.cpp's CPU path is
  // exercised most with. Either way the layout string says which.
  const bool flash_attention = settings_.kv_ggml == GGML_TYPE_Q8_0;
  if (flash_attention && (model_.head_dim_k % 32 != 0 || model_.head_dim_v % 32 != 0)) {
    throw std::invalid_argument(
        "setting kv_type = 'q8_0' needs head sizes that are multiples of "
        "32; this model's are " +
        std::to_string(model_.head_dim_k) + " and " + std::to_string(model_.head_dim_v));
  }
  // One ubatch per batch makes a restore batch exactly like a recomputation.
  llama_context_params p = context_params(settings_, n_ctx_, batch_);
  p.type_k = settings_.kv_ggml;
  p.type_v = settings_.kv_ggml;
  if (flash_attention) p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
  // Device-resident states (device_slots.h): sequences of their own in the
  // one unified KV buffer, which gets their cells on top of the context's.
  // Unified, so a state's format is the same as without them (llama.cpp
  // writes a stream count into it) and a restore shares cells instead of
  // copying a stream.
  const std::uint64_t cell_bytes = kv_cell_bytes(model_, settings_.kv_ggml);
  const std::uint64_t state_cells = cell_bytes ? settings_.device_state_bytes / cell_bytes : 0;
  // llama.cpp reserves its graphs for a ubatch of one output per sequence:
  // no more sequences than a batch has tokens.
  const std::uint64_t state_sequences =
      state_cells == 0 ? 0
                       : std::min({kMaxDeviceStates, static_cast<std::uint64_t>(batch_) - 1,
                                   static_cast<std::uint64_t>(llama_max_parallel_sequences()) - 1});
  if (state_sequences > 0) {
    p.n_seq_max = static_cast<std::uint32_t>(1 + state_sequences);
    p.kv_unified = true;
    p.n_ctx = static_cast<std::uint32_t>(n_ctx_ + state_cells);
  }
  context_.reset(llama_init_from_model(model_.model.get(), p));
  if (!context_) {
    throw std::invalid_argument("llama.cpp cannot create a context of " + std::to_string(n_ctx_) +
                                " tokens (kv_type " + settings_.kv_type + ") for " +
                                settings_.model);
  }
  n_ctx_ = std::min(n_ctx_, llama_n_ctx_seq(context_.get()));
  slots_ = DeviceSlots(static_cast<std::uint32_t>(state_sequences), state_cells);
  batch_buffer_ = std::make_unique<OwnedBatch>(static_cast<std::int32_t>(batch_));

  info_.model = model_.name;
  info_.model_hash = model_.hash_hex;
  info_.adapters = "";
  info_.kv_type = settings_.kv_type;
  info_.layout = layout_of(model_, flash_attention);
  info_.context = n_ctx_;
  info_.batch = batch_;
  info_.vocabulary = static_cast<std::uint32_t>(model_.n_vocab);
  info_.device = model_.device.name;
  info_.device_description = model_.device.description;
  info_.device_note = model_.device.note;
  info_.gpu_layers = static_cast<std::uint32_t>(model_.gpu_layers);
  info_.layers = static_cast<std::uint32_t>(model_.n_layer);
  info_.device_memory_bytes = device_memory(model_.device).total;
  info_.device_state_sequences = static_cast<std::uint32_t>(state_sequences);
  info_.device_state_budget = state_sequences > 0 ? state_cells * cell_bytes : 0;
  info_.kv_cell_bytes = cell_bytes;
  calibrate_state_shape();
  publish();
}

void Engine::calibrate_state_shape() {
  // The states of one and of two tokens: the first offset where they hold
  // 1 and 2 after identical bytes is the cell count; the size difference is
  // one cell's bytes.
  std::string one, two;
  for (std::uint32_t n : {1u, 2u}) {
    const std::vector<llama_token> tokens(
        n, llama_vocab_bos(model_.vocab) >= 0 ? llama_vocab_bos(model_.vocab) : 0);
    clear();
    decode(tokens, 0, n, false);
    ParsedState parsed;
    const std::string blob = export_state(tokens);
    if (!parse_state(blob, &parsed).empty()) return;
    (n == 1 ? one : two) = blob.substr(parsed.llama_offset);
  }
  clear();
  if (two.size() <= one.size()) return;
  state_per_cell_ = two.size() - one.size();
  state_base_ = one.size() - state_per_cell_;
  for (std::size_t at = 0; at + 4 <= one.size(); ++at) {
    std::uint32_t a, b;
    std::memcpy(&a, one.data() + at, 4);
    std::memcpy(&b, two.data() + at, 4);
    if (a == 1 && b == 2) {
      cells_offset_ = at;
      state_prefix_ = one.substr(0, at);
      return;
    }
    if (one[at] != two[at]) return;
  }
}

bool Engine::state_fits(std::string_view blob, const ParsedState& parsed) const {
  if (cells_offset_ == SIZE_MAX) return true;  // not learned: llama.cpp's checks only
  const std::size_t cells = parsed.header.tokens.size();
  if (parsed.llama_size != state_base_ + state_per_cell_ * cells) return false;
  if (parsed.llama_size < cells_offset_ + 4) return false;
  const char* bytes = blob.data() + parsed.llama_offset;
  std::uint32_t count;
  std::memcpy(&count, bytes + cells_offset_, 4);
  return count == cells && std::memcmp(bytes, state_prefix_.data(), cells_offset_) == 0;
}

ChatTokens Engine::chat_tokens(std::string_view system, std::string_view user) const {
  if (system.size() + user.size() > kMaxTokenizeBytes) {
    throw std::invalid_argument("block and prompt are over the tokenize limit of 4 MiB");
  }
  return llama_exec::chat_tokens(model_.model.get(), model_.vocab, system, user,
                                 [this](std::string_view text, bool add, bool special) {
                                   return tokenize(text, add, special);
                                 });
}

std::vector<llama_token> Engine::tokenize(std::string_view text, bool add_special,
                                          bool parse_special) const {
  if (text.size() > kMaxTokenizeBytes) {
    throw std::invalid_argument("text of " + std::to_string(text.size()) +
                                " bytes is over the tokenize limit of 4 MiB");
  }
  // The vocabulary is read-only: tokenizing needs no lock on the context.
  std::vector<llama_token> tokens(text.size() + 8);
  int32_t n =
      llama_tokenize(model_.vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                     static_cast<int32_t>(tokens.size()), add_special, parse_special);
  if (n < 0 && n != INT32_MIN) {  // the buffer was short: -n is the count
    tokens.resize(static_cast<std::size_t>(-n));
    n = llama_tokenize(model_.vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                       static_cast<int32_t>(tokens.size()), add_special, parse_special);
  }
  if (n < 0) throw std::runtime_error("llama.cpp cannot tokenize the text");
  tokens.resize(static_cast<std::size_t>(n));
  return tokens;
}

void Engine::check_tokens(const std::vector<llama_token>& tokens) const {
  if (tokens.empty()) throw std::invalid_argument("no tokens");
  if (tokens.size() > n_ctx_) {
    throw std::invalid_argument("a prompt of " + std::to_string(tokens.size()) +
                                " tokens does not fit the context of " + std::to_string(n_ctx_));
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= model_.n_vocab) {
      throw std::invalid_argument("token " + std::to_string(tokens[i]) + " at " +
                                  std::to_string(i) + " is not in the vocabulary of " +
                                  std::to_string(model_.n_vocab));
    }
  }
}

void Engine::clear() {
  llama_memory_seq_rm(llama_get_memory(context_.get()), 0, -1, -1);
  live_scope_.clear();
  live_tokens_.clear();
}

bool Engine::set_sequence_0(const std::uint8_t* bytes, std::size_t size, std::size_t tokens) {
  llama_context* ctx = context_.get();
  llama_memory_t mem = llama_get_memory(ctx);
  auto holds_them = [&] {
    return llama_memory_seq_pos_min(mem, 0) == 0 &&
           llama_memory_seq_pos_max(mem, 0) == static_cast<llama_pos>(tokens) - 1;
  };
  clear();
  if (llama_state_seq_set_data(ctx, bytes, size, 0) != 0 && holds_them()) return true;
  // llama.cpp reads a state into one run of free cells; the states kept in
  // the cache's own sequences may have split them. Without those, once.
  if (slots_.stats().held == 0) return false;
  for (std::int32_t sequence : slots_.clear()) llama_memory_seq_rm(mem, sequence, -1, -1);
  clear();
  return llama_state_seq_set_data(ctx, bytes, size, 0) != 0 && holds_them();
}

void Engine::wipe_memory() {
  llama_memory_clear(llama_get_memory(context_.get()), true);
  slots_.clear();
  clear();
}

bool Engine::start_from_recent(std::uint32_t cached, std::uint32_t live,
                               const PromptCache::Match& kept) {
  llama_memory_t mem = llama_get_memory(context_.get());
  if (cached == 0) {
    clear();
    return true;
  }
  if (cached > live) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(kept.state->data());
    if (!set_sequence_0(bytes, kept.state->size(), kept.tokens.size())) {
      // Our own bytes, so not expected; clear the data too, as for a state.
      wipe_memory();
      return false;
    }
  }
  llama_memory_seq_rm(mem, 0, static_cast<llama_pos>(cached), -1);
  live_scope_.clear();  // what it holds is settled by keep_prompt()
  live_tokens_.clear();
  return true;
}

std::string Engine::sequence_bytes(std::size_t size) {
  std::string bytes(size, '\0');
  const std::size_t written = llama_state_seq_get_data(
      context_.get(), reinterpret_cast<std::uint8_t*>(bytes.data()), size, 0);
  if (written != size) {
    throw std::runtime_error("llama_state_seq_get_data wrote " + std::to_string(written) +
                             " bytes of " + std::to_string(size));
  }
  return bytes;
}

void Engine::keep_prompt(const std::string& scope, const std::vector<llama_token>& prompt) {
  llama_memory_seq_rm(llama_get_memory(context_.get()), 0, static_cast<llama_pos>(prompt.size()),
                      -1);  // generated
  if (scope.empty() || !prompts_.enabled()) return;
  live_scope_ = scope;
  live_tokens_ = prompt;
  if (prompts_.holds(scope, prompt)) return;
  // Sized first: a state over the whole budget is not even copied.
  const std::size_t size = llama_state_seq_get_size(context_.get(), 0);
  if (prompts_.fits(size)) {
    prompts_.insert(scope, prompt, std::make_shared<const std::string>(sequence_bytes(size)));
  }
}

void Engine::decode(const std::vector<llama_token>& tokens, std::uint32_t from, std::uint32_t to,
                    bool logits_last, const std::function<void(std::uint32_t end)>& after_batch) {
  for (std::uint32_t at = from; at < to; at += batch_) {
    const std::uint32_t n = std::min(batch_, to - at);
    const bool last = at + n == to;
    llama_batch& b = batch_buffer_->fill(tokens.data() + at, static_cast<std::int32_t>(n),
                                         static_cast<llama_pos>(at), logits_last && last);
    const int32_t rc = llama_decode(context_.get(), b);
    if (rc != 0) {
      clear();
      throw std::runtime_error("llama_decode failed (" + std::to_string(rc) + ") at position " +
                               std::to_string(at));
    }
    if (after_batch) after_batch(at + n);
  }
}

std::string Engine::export_state(const std::vector<llama_token>& tokens) {
  StateHeader header;
  header.model_hash = model_.hash;
  header.adapters = applied_set_;
  header.kv_type = info_.kv_type;
  header.layout = info_.layout;
  header.tokens = tokens;
  const std::string bytes = sequence_bytes(llama_state_seq_get_size(context_.get(), 0));
  return encode_state_header(header, bytes.size()) + bytes;
}

namespace {

// An adapter's scale past this is no longer the adapter, and one that is
// not finite would poison every value it touches.
constexpr float kMaxAdapterScale = 16;

std::string short_hex(const std::string& raw_digest) {
  return to_hex(reinterpret_cast<const unsigned char*>(raw_digest.data()), raw_digest.size())
      .substr(0, 12);
}

}  // namespace

std::string Engine::prompt_scope(const std::string& scope) const {
  if (scope.empty()) return scope;
  return scope + '\x1f' + applied_set_;
}

void Engine::verify_adapter_file(const AdapterInput& a) const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(a.path, ec);
  if (ec || size != a.size) {
    throw std::invalid_argument("adapter " + short_hex(a.digest) + ": " + a.path +
                                (ec ? " cannot be read" : " is not of its recorded size"));
  }
  Digest digest;
  try {
    digest = sha256_file(a.path);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument("adapter " + short_hex(a.digest) + ": " + e.what());
  }
  if (std::memcmp(digest.data(), a.digest.data(), digest.size()) != 0) {
    throw std::invalid_argument("adapter " + short_hex(a.digest) + ": " + a.path +
                                " does not match its digest");
  }
}

AdapterPtr Engine::load_adapter(const AdapterInput& a) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(a.path.c_str(), "rb"), &std::fclose);
  if (!file) throw std::invalid_argument("adapter " + short_hex(a.digest) + " cannot be opened");
  AdapterPtr adapter(llama_adapter_lora_init_from_file_ptr(model_.model.get(), file.get()));
  if (!adapter) {
    throw std::invalid_argument("llama.cpp refused adapter " + short_hex(a.digest) +
                                " (its log says why)");
  }
  return adapter;
}

const std::string& Engine::apply_adapters(const std::vector<AdapterInput>& in) {
  if (in.empty() && applied_set_.empty()) return applied_set_;
  if (!in.empty() && !adapters_.enabled()) {
    throw std::invalid_argument("adapters are off in this executor (max_adapter_bytes = 0)");
  }
  if (in.size() > kMaxAdaptersPerCall) {
    throw std::invalid_argument(std::to_string(in.size()) + " adapters in one call; at most " +
                                std::to_string(kMaxAdaptersPerCall));
  }
  std::vector<adapters::Member> members;
  std::map<std::string, const AdapterInput*> by_hex;
  for (const AdapterInput& a : in) {
    if (a.digest.size() != 32) {
      throw std::invalid_argument("adapter digest of " + std::to_string(a.digest.size()) +
                                  " bytes, not 32");
    }
    if (!std::isfinite(a.scale) || std::fabs(a.scale) > kMaxAdapterScale) {
      throw std::invalid_argument("adapter scale " + std::to_string(a.scale) +
                                  " is not a number in [-16, 16]");
    }
    if (a.kind != "lora" && a.kind != "cvec") {
      throw std::invalid_argument("adapter kind '" + a.kind.substr(0, 16) +
                                  "' is neither lora nor cvec");
    }
    std::string hex =
        to_hex(reinterpret_cast<const unsigned char*>(a.digest.data()), a.digest.size());
    if (!by_hex.emplace(hex, &a).second) {
      throw std::invalid_argument("adapter " + hex.substr(0, 12) + " is named twice");
    }
    members.push_back({std::move(hex), a.scale, a.kind});
  }
  std::string set = adapters::canonical_set(members);
  if (set == applied_set_) return applied_set_;
  // Loading may free other adapters: none stays applied meanwhile.
  llama_context* ctx = context_.get();
  llama_set_adapters_lora(ctx, nullptr, 0, nullptr);
  if (vector_applied_) {
    llama_set_adapter_cvec(ctx, nullptr, 0, model_.n_embd, 0, 0);
    vector_applied_ = false;
  }
  applied_set_.clear();
  std::vector<std::string> keep;
  for (const auto& m : members) keep.push_back(by_hex[m.digest_hex]->digest);
  std::vector<llama_adapter_lora*> loaded;
  std::vector<float> scales;
  std::vector<float> vector;  // the control vectors' scaled sum
  for (const auto& m : members) {
    const AdapterInput& a = *by_hex[m.digest_hex];
    if (a.kind == "cvec") {
      const std::vector<float>* directions = adapters_.find_vector(a.digest);
      if (!directions) {
        verify_adapter_file(a);
        ControlVector cv;
        try {
          cv = read_control_vector(a.path, shapes(), model_.n_embd, model_.n_layer);
        } catch (const std::invalid_argument& e) {
          throw std::invalid_argument("control vector " + short_hex(a.digest) + " " + e.what());
        }
        adapters_.insert_vector(a.digest, std::move(cv.data), a.size, keep);
        directions = adapters_.find_vector(a.digest);
      }
      vector.resize(directions->size(), 0.0f);
      for (std::size_t i = 0; i < directions->size(); ++i) vector[i] += m.scale * (*directions)[i];
      continue;
    }
    llama_adapter_lora* adapter = adapters_.find(a.digest);
    if (!adapter) {
      verify_adapter_file(a);
      // Checked again, not only at upload: a file that came in a cube
      // archive, or was made for another model, was never checked here.
      try {
        check_adapter_file(a.path, shapes());
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("adapter " + short_hex(a.digest) + " " + e.what());
      }
      AdapterPtr fresh = load_adapter(a);
      adapter = fresh.get();
      adapters_.insert(a.digest, std::move(fresh), a.size, keep);
    }
    loaded.push_back(adapter);
    scales.push_back(m.scale);
  }
  if (llama_set_adapters_lora(ctx, loaded.data(), loaded.size(), scales.data()) != 0) {
    throw std::runtime_error("llama.cpp refused the adapter set " + set);
  }
  if (!vector.empty()) {
    if (llama_set_adapter_cvec(ctx, vector.data(), vector.size(), model_.n_embd, 1,
                               model_.n_layer - 1) != 0) {
      throw std::runtime_error("llama.cpp refused the control vectors of " + set);
    }
    vector_applied_ = true;
  }
  applied_set_ = std::move(set);
  return applied_set_;
}

AdapterFacts Engine::check_adapter(const AdapterInput& a) {
  if (!adapters_.enabled()) {
    throw std::invalid_argument("adapters are off in this executor (max_adapter_bytes = 0)");
  }
  if (a.digest.size() != 32) {
    throw std::invalid_argument("adapter digest of " + std::to_string(a.digest.size()) +
                                " bytes, not 32");
  }
  std::lock_guard lock(mutex_);
  Publisher publish_on_return{*this};
  verify_adapter_file(a);
  AdapterFacts facts;
  facts.architecture = model_.architecture;
  facts.base_model = model_.hash_hex;
  if (is_control_vector_file(a.path)) {
    ControlVector cv;
    try {
      cv = read_control_vector(a.path, shapes(), model_.n_embd, model_.n_layer);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("the control vector ") + e.what());
    }
    facts.kind = "cvec";
    facts.tensors = static_cast<std::uint32_t>(cv.layers);
    if (!adapters_.find_vector(a.digest)) {
      adapters_.insert_vector(a.digest, std::move(cv.data), a.size, {a.digest});
    }
    return facts;
  }
  AdapterFileFacts file;
  try {
    file = check_adapter_file(a.path, shapes());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("the adapter ") + e.what());
  }
  // The file fits; llama.cpp has the last word, and a loaded adapter is
  // kept for the chats that follow its import.
  if (!adapters_.find(a.digest)) {
    AdapterPtr adapter = load_adapter(a);
    llama_set_adapters_lora(context_.get(), nullptr, 0, nullptr);
    applied_set_.clear();
    adapters_.insert(a.digest, std::move(adapter), a.size, {a.digest});
  }
  facts.name = file.name;
  facts.tensors = file.tensors;
  facts.rank = file.rank;
  facts.alpha = file.alpha;
  return facts;
}

const ModelShapes& Engine::shapes() {
  if (shapes_.matrices.empty()) {
    shapes_ = read_model_shapes(settings_.model, model_.architecture, model_.hash_hex);
  }
  return shapes_;
}

std::string Engine::control_vector(const std::vector<std::string>& positive,
                                   const std::vector<std::string>& negative) {
  auto tokens_of = [&](const std::vector<std::string>& texts) {
    std::vector<std::vector<llama_token>> out;
    for (const auto& t : texts) out.push_back(tokenize(t, true));
    return out;
  };
  const auto pos = tokens_of(positive), neg = tokens_of(negative);
  // Its own context, and the model is read-only: the chats' context is left
  // alone, but one call at a time still (memory).
  std::lock_guard lock(mutex_);
  const ControlVector cv = derive_control_vector(
      model_.model.get(), pos, neg, std::min<std::uint32_t>(n_ctx_, 2048), settings_.threads);
  return encode_control_vector(cv, model_.architecture);
}

TextScore Engine::score(const std::vector<std::string>& texts,
                        const std::vector<AdapterInput>& adapters) {
  std::vector<std::vector<llama_token>> all;
  for (const auto& t : texts) {
    all.push_back(tokenize(t, true));
    if (all.back().size() > n_ctx_) all.back().resize(n_ctx_);
  }
  std::lock_guard lock(mutex_);
  Publisher publish_on_return{*this};
  apply_adapters(adapters);
  TextScore out;
  for (const auto& tokens : all) {
    clear();
    const auto size = static_cast<std::uint32_t>(tokens.size());
    for (std::uint32_t at = 0; at + 1 < size; at += batch_) {
      const std::uint32_t n = std::min(batch_, size - at);
      llama_batch& b = batch_buffer_->fill(tokens.data() + at, static_cast<std::int32_t>(n),
                                           static_cast<llama_pos>(at), false, true);
      if (const std::int32_t rc = llama_decode(context_.get(), b); rc != 0) {
        clear();
        throw std::runtime_error("llama_decode failed (" + std::to_string(rc) + ")");
      }
      for (std::uint32_t i = 0; i < n && at + i + 1 < size; ++i) {
        const float* logits = llama_get_logits_ith(context_.get(), static_cast<std::int32_t>(i));
        const llama_token next = tokens[at + i + 1];
        float top = logits[0];
        llama_token best = 0;
        for (llama_token v = 1; v < model_.n_vocab; ++v) {
          if (logits[v] > top) top = logits[v], best = v;
        }
        double sum = 0;
        for (llama_token v = 0; v < model_.n_vocab; ++v) sum += std::exp(logits[v] - top);
        out.nll += std::log(sum) - (logits[next] - top);
        out.correct += best == next;
        ++out.tokens;
      }
    }
  }
  clear();
  return out;
}

std::uint64_t Engine::distill_begin(const std::vector<std::string>& texts, DistillOptions options) {
  std::vector<std::vector<llama_token>> tokens;
  for (const auto& t : texts) tokens.push_back(tokenize(t, true));
  options.threads = settings_.threads;
  options.scratch_dir = settings_.state_dir;
  std::lock_guard lock(mutex_);
  if (distillation_) {
    throw std::invalid_argument("distillation " + std::to_string(distillation_id_) +
                                " is open; one at a time");
  }
  distillation_ = std::make_unique<Distillation>(settings_.model, model_.hash_hex,
                                                 model_.architecture, tokens, options);
  distillation_id_ = next_distillation_++;
  return distillation_id_;
}

Distillation& Engine::open_distillation(std::uint64_t id) {
  if (!distillation_ || id != distillation_id_) {
    throw std::invalid_argument("no distillation " + std::to_string(id));
  }
  return *distillation_;
}

DistillProgress Engine::distill_step(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  Distillation& d = open_distillation(id);
  if (d.done()) return d.progress();
  try {
    return d.step();
  } catch (const std::runtime_error&) {
    distillation_.reset();
    throw;
  }
}

DistillProgress Engine::distill_progress(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  return open_distillation(id).progress();
}

std::string Engine::distill_finish(std::uint64_t id, const std::string& name) {
  std::lock_guard lock(mutex_);
  Distillation& d = open_distillation(id);
  if (!d.done()) {
    const DistillProgress& p = d.progress();
    throw std::invalid_argument("distillation " + std::to_string(id) + " has run " +
                                std::to_string(p.done) + " of its " + std::to_string(p.total) +
                                " steps");
  }
  std::string gguf = d.adapter(name);
  distillation_.reset();
  return gguf;
}

void Engine::distill_cancel(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  open_distillation(id);
  distillation_.reset();
}

PrefillResult Engine::prefill(const std::vector<llama_token>& tokens,
                              const std::string& cache_scope,
                              const std::vector<AdapterInput>& adapters) {
  check_tokens(tokens);
  std::lock_guard lock(mutex_);
  Publisher publish_on_return{*this};  // counters, for status() without the lock
  apply_adapters(adapters);
  PrefillResult r;
  const double start = now_us();
  // From an empty sequence even when a recent prompt shares a prefix: the
  // time is the state's whole prefill time, which its eviction weighs.
  clear();
  decode(tokens, 0, static_cast<std::uint32_t>(tokens.size()), false);
  r.prefill_ms = (now_us() - start) / 1000.0;
  r.state = export_state(tokens);
  r.tokens = static_cast<std::uint32_t>(tokens.size());
  keep_prompt(prompt_scope(cache_scope), tokens);
  return r;
}

Blob Engine::load_blob(const GenerateInput& input, bool* resident, std::string* why) {
  if (input.state_digest.size() != 32) {
    *why = "digest of " + std::to_string(input.state_digest.size()) + " bytes, not 32";
    return nullptr;
  }
  if (Blob hit = resident_.find(input.state_digest, input.state_utility)) {
    *resident = true;
    return hit;
  }
  std::ifstream in(input.state_path, std::ios::binary | std::ios::ate);
  if (!in) {
    *why = "cannot read " + input.state_path + ": " + std::strerror(errno);
    return nullptr;
  }
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<std::uint64_t>(size) != input.state_size) {
    *why = "corrupt: " + input.state_path + " has " + std::to_string(size) + " bytes, not " +
           std::to_string(input.state_size);
    return nullptr;
  }
  // Straight into the block it will be restored from (page-locked on a GPU).
  std::shared_ptr<StagedBytes> bytes = staging_.allocate(static_cast<std::size_t>(size));
  in.seekg(0);
  if (!in.read(bytes->data(), size)) {
    *why = "cannot read " + input.state_path;
    return nullptr;
  }
  const Digest digest = sha256(bytes->view());
  if (std::memcmp(digest.data(), input.state_digest.data(), digest.size()) != 0) {
    *why = "corrupt: " + input.state_path + " does not match its digest";
    return nullptr;
  }
  return bytes;
}

Engine::Restored Engine::restore(const GenerateInput& input, std::uint32_t cached,
                                 std::uint32_t limit) {
  // A state in the KV cache's own sequences needs no blob.
  if (slots_.enabled() && input.state_digest.size() == 32) {
    if (const SlotState* held = slots_.find(input.state_digest, input.state_utility)) {
      return restore_from_slot(*held, input, cached, limit);
    }
  }
  Restored r;
  Blob blob = load_blob(input, &r.resident, &r.why);
  if (!blob) return r;
  ParsedState parsed;
  r.why = parse_state(blob->view(), &parsed);
  const StateHeader& h = parsed.header;
  if (!r.why.empty()) {
  } else if (h.model_hash != model_.hash) {
    r.why = "made by another model (" + to_hex(h.model_hash).substr(0, 12) + ")";
  } else if (h.adapters != applied_set_) {
    r.why = "made under adapters '" + (h.adapters.empty() ? "none" : h.adapters) +
            "', this call runs '" + (applied_set_.empty() ? "none" : applied_set_) + "'";
  } else if (h.kv_type != info_.kv_type) {
    r.why = "KV type " + h.kv_type + ", this executor uses " + info_.kv_type;
  } else if (h.layout != info_.layout) {
    r.why = "layout '" + h.layout + "', this executor has '" + info_.layout + "'";
  } else if (h.tokens.size() > n_ctx_) {
    r.why = "covers " + std::to_string(h.tokens.size()) + " tokens, over the context";
  } else if (!state_fits(blob->view(), parsed)) {
    r.why =
        "llama.cpp's bytes do not hold the header's " + std::to_string(h.tokens.size()) + " tokens";
  } else if ((r.match = common_prefix(h.tokens, input.tokens)) == 0) {
    r.why = "shares no prefix with the prompt";
  }
  if (!r.why.empty()) {
    // A blob that is intact but unusable here is not kept.
    if (r.resident) resident_.erase(input.state_digest);
    r.match = 0;
    return r;
  }
  if (std::min(r.match, limit) <= cached) {  // a recent prompt covers as much: nothing to read
    if (!r.resident) resident_.insert(input.state_digest, blob, input.state_utility);
    return r;
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(blob->data()) + parsed.llama_offset;
  if (!set_sequence_0(bytes, parsed.llama_size, h.tokens.size())) {
    // A refused state may have been read in part: clear the data too, so
    // none of its values lingers in cells a later decode's attention spans
    // (masked, but a NaN times a mask is still NaN).
    wipe_memory();
    resident_.erase(input.state_digest);
    r.why = "llama.cpp refused the state";
    r.match = 0;
    r.cleared = true;
    return r;
  }
  if (!r.resident) resident_.insert(input.state_digest, blob, input.state_utility);
  r.read = true;
  keep_in_slot(input, h);
  return r;
}

Engine::Restored Engine::restore_from_slot(const SlotState& held, const GenerateInput& input,
                                           std::uint32_t cached, std::uint32_t limit) {
  Restored r;
  r.resident = true;
  // Checked against the model, KV type and layout when it was filled; the
  // adapters are each call's own.
  if (held.adapters != applied_set_) {
    r.why = "made under adapters '" + (held.adapters.empty() ? "none" : held.adapters) +
            "', this call runs '" + (applied_set_.empty() ? "none" : applied_set_) + "'";
    return r;
  }
  r.match = common_prefix(held.tokens, input.tokens);
  if (r.match == 0) {
    r.why = "shares no prefix with the prompt";
    return r;
  }
  if (std::min(r.match, limit) <= cached) return r;  // a recent prompt covers as much
  llama_memory_t mem = llama_get_memory(context_.get());
  clear();
  llama_memory_seq_cp(mem, held.sequence, 0, -1, -1);  // shares its cells: no copy
  if (llama_memory_seq_pos_min(mem, 0) != 0 ||
      llama_memory_seq_pos_max(mem, 0) != static_cast<llama_pos>(held.tokens.size()) - 1) {
    // Not what was put there: forget the slot, decode the prompt in full.
    llama_memory_seq_rm(mem, held.sequence, -1, -1);
    slots_.erase(held.digest);
    clear();
    r.why = "its sequence in the KV cache does not hold its tokens";
    r.match = 0;
    r.cleared = true;
    return r;
  }
  r.read = true;
  r.in_slot = true;
  return r;
}

void Engine::keep_in_slot(const GenerateInput& input, const StateHeader& header) {
  if (!slots_.enabled()) return;
  SlotState state;
  state.digest = input.state_digest;
  state.tokens.assign(header.tokens.begin(), header.tokens.end());
  state.adapters = header.adapters;
  state.utility = input.state_utility;
  std::vector<std::int32_t> evicted;
  const std::int32_t sequence = slots_.place(std::move(state), &evicted);
  llama_memory_t mem = llama_get_memory(context_.get());
  for (std::int32_t gone : evicted) llama_memory_seq_rm(mem, gone, -1, -1);
  if (sequence == 0) return;  // the states kept are worth more
  // Sequence 0 holds exactly the state now: its cells become the slot's
  // too (shared; a decode writes only free cells, so they stay as they are).
  llama_memory_seq_cp(mem, 0, sequence, -1, -1);
}

GenerateResult Engine::generate(const GenerateInput& input, const Warn& warn) {
  const double start = now_us();
  check_tokens(input.tokens);
  const auto n = static_cast<std::uint32_t>(input.tokens.size());
  if (input.export_tokens > n) {
    throw std::invalid_argument("exportTokens " + std::to_string(input.export_tokens) +
                                " is past the prompt of " + std::to_string(n) + " tokens");
  }
  if (input.split_tokens > n) {
    throw std::invalid_argument("splitTokens " + std::to_string(input.split_tokens) +
                                " is past the prompt of " + std::to_string(n) + " tokens");
  }
  // What does not fit after the prompt is not generated.
  const std::uint32_t max_tokens = std::min(input.max_tokens, n_ctx_ - n);

  std::lock_guard lock(mutex_);
  Publisher publish_on_return{*this};  // counters, for status() without the lock
  GenerateResult out;
  out.prompt_tokens = n;
  llama_memory_t mem = llama_get_memory(context_.get());
  apply_adapters(input.adapters);

  // Neither a state nor a recent prompt holds logits: the last prompt
  // position is decoded again. An export inside a reused prefix starts the
  // decode there.
  std::uint32_t limit = n - 1;
  if (input.export_tokens > 0) limit = std::min(limit, input.export_tokens);
  // What the scope's recent prompts cover: the one still in the context,
  // or one whose state the prompt cache keeps.
  const std::string scope = prompts_.enabled() ? prompt_scope(input.cache_scope) : std::string();
  std::uint32_t live = 0;
  PromptCache::Match kept;
  if (!scope.empty()) {
    if (scope == live_scope_) live = std::min(common_prefix(live_tokens_, input.tokens), limit);
    if (live < limit) kept = prompts_.longest(scope, input.tokens);
  }
  std::uint32_t cached = std::max(live, std::min(kept.shared, limit));

  // A stored state is read only when it covers more than that.
  const double restore_start = now_us();
  std::uint32_t match = 0;
  bool read = false;
  if (!input.state_path.empty()) {
    Restored r = restore(input, cached, limit);
    out.state_resident = r.resident || (r.why.empty() && !r.read);
    read = r.read;
    if (read) match = std::min(r.match, limit);
    if (r.why.empty()) {
      out.state_status = "restored";
    } else {
      ++rejected_;
      out.state_status = "rejected: " + r.why;
      warn("state " + input.state_path + " " + out.state_status);
      if (r.cleared) live = 0, cached = std::min(kept.shared, limit);
    }
  }
  if (read) {
    llama_memory_seq_rm(mem, 0, static_cast<llama_pos>(match), -1);
  } else {
    if (!start_from_recent(cached, live, kept)) cached = 0;
    match = cached;
    if (match > 0) {
      out.cached_tokens = match;
      ++prompt_hits_;
      prompt_tokens_ += match;
    }
  }
  out.reused_tokens = match;
  if (!input.state_path.empty() || match > 0) out.restore_ms = (now_us() - restore_start) / 1000.0;

  // The decode is split at the restored prefix, at splitTokens and at
  // exportTokens; each part goes `batch_` at a time from its own start, so
  // a recomputation split where a restore ends batches exactly like it.
  std::vector<std::uint32_t> cuts;
  for (std::uint32_t c : {input.split_tokens, input.export_tokens}) {
    if (c > match && c < n) cuts.push_back(c);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.push_back(n);
  const double prefill_start = now_us();
  double export_us = 0;
  if (input.export_tokens > 0 && input.export_tokens == match) {
    const double t = now_us();
    out.exported = export_state({input.tokens.begin(), input.tokens.begin() + match});
    export_us += now_us() - t;
  }
  std::uint32_t at = match;
  std::function<void(std::uint32_t)> progress;
  if (input.on_prefill) {
    progress = [&](std::uint32_t end) { input.on_prefill(end - match, n - match); };
    progress(match);
  }
  for (std::uint32_t cut : cuts) {
    if (cut <= at) continue;
    decode(input.tokens, at, cut, cut == n, progress);
    at = cut;
    if (cut == input.export_tokens) {
      const double t = now_us();
      out.export_prefill_ms = (t - prefill_start - export_us) / 1000.0;
      out.exported = export_state({input.tokens.begin(), input.tokens.begin() + cut});
      export_us += now_us() - t;
    }
  }
  out.prefill_ms = (now_us() - prefill_start - export_us) / 1000.0;

  if (input.want_logits) {
    const float* logits = llama_get_logits_ith(context_.get(), -1);
    if (!logits) throw std::runtime_error("llama.cpp returned no logits for the prompt");
    out.logits.assign(logits, logits + model_.n_vocab);
  }
  sample(input, max_tokens, out, start);
  keep_prompt(scope, input.tokens);
  out.total_ms = (now_us() - start) / 1000.0;
  return out;
}

void Engine::sample(const GenerateInput& input, std::uint32_t max_tokens, GenerateResult& out,
                    double start) {
  if (max_tokens == 0) {
    out.finish = "prompt";
    out.first_token_ms = (now_us() - start) / 1000.0;
    return;
  }
  const SamplingParams& s = input.sampling;
  SamplerPtr chain(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  if (s.temperature <= 0) {
    llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
  } else {
    if (s.top_k > 0) {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(static_cast<int32_t>(s.top_k)));
    }
    if (s.top_p > 0 && s.top_p < 1) {
      llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(s.top_p, 1));
    }
    llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(s.temperature));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(s.seed ? s.seed : settings_.seed));
  }
  const auto n = static_cast<std::uint32_t>(input.tokens.size());
  std::string bytes;
  std::size_t shown = 0;  // of `bytes`, already streamed
  auto stream = [&] {
    const std::size_t end = shown + shown_utf8_prefix(std::string_view(bytes).substr(shown));
    if (end == shown) return;
    input.on_text(valid_utf8(std::string_view(bytes).substr(shown, end - shown)));
    shown = end;
  };
  std::vector<char> piece(64);
  out.finish = "length";
  for (std::uint32_t i = 0; i < max_tokens; ++i) {
    const llama_token t = llama_sampler_sample(chain.get(), context_.get(), -1);
    if (i == 0) out.first_token_ms = (now_us() - start) / 1000.0;
    if (llama_vocab_is_eog(model_.vocab, t)) {
      out.finish = "eog";
      break;
    }
    out.tokens.push_back(t);
    int32_t len = llama_token_to_piece(model_.vocab, t, piece.data(),
                                       static_cast<int32_t>(piece.size()), 0, false);
    if (len < 0) {
      piece.resize(static_cast<std::size_t>(-len));
      len = llama_token_to_piece(model_.vocab, t, piece.data(), static_cast<int32_t>(piece.size()),
                                 0, false);
    }
    if (len > 0) bytes.append(piece.data(), static_cast<std::size_t>(len));
    if (input.on_text) stream();
    if (i + 1 == max_tokens) break;
    llama_batch& b = batch_buffer_->fill(&t, 1, static_cast<llama_pos>(n + i), true);
    const int32_t rc = llama_decode(context_.get(), b);
    if (rc != 0) {
      clear();
      throw std::runtime_error("llama_decode failed (" + std::to_string(rc) + ") while generating");
    }
  }
  out.text = valid_utf8(bytes);
  // What a character never completed held back: the rest, as the text ends it.
  if (input.on_text && shown < bytes.size())
    input.on_text(valid_utf8(std::string_view(bytes).substr(shown)));
}

void Engine::publish() {
  ExecutorCounters c;
  c.resident = resident_.stats();
  c.staging = staging_.stats();
  c.device_memory = device_memory(model_.device);
  c.slots = slots_.stats();
  c.rejected = rejected_;
  c.prompts_held = prompts_.size();
  c.prompt_hits = prompt_hits_;
  c.prompt_tokens = prompt_tokens_;
  c.adapters = adapters_.stats();
  std::lock_guard lock(counters_mutex_);
  published_ = c;
}

ExecutorCounters Engine::counters() {
  // Not the engine's lock: a status must answer while a long prefill runs.
  std::lock_guard lock(counters_mutex_);
  return published_;
}

}  // namespace memos::llama_exec
