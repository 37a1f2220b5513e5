// The llama.cpp executor as a memosd plugin (memos-plugin(7)): translates
// plugin.capnp's executor requests to the Engine and back. Runs isolated in
// memos-plugin-host by default (its manifest).
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "memos/plugin_sdk.h"
#include "plugins/llama-executor/engine.h"

namespace {

using memos::llama_exec::Engine;
using memos::plugin_sdk::Call;
using memos::plugin_sdk::Config;
using memos::plugin_sdk::Reply;
using memos::plugin_sdk::Request;
namespace wire = memos::plugin_wire;

std::vector<llama_token> tokens_of(capnp::List<int32_t>::Reader list) {
  std::vector<llama_token> out(list.size());
  for (unsigned i = 0; i < list.size(); ++i) out[i] = list[i];
  return out;
}

void set_tokens(capnp::List<int32_t>::Builder out, const std::vector<llama_token>& in) {
  for (unsigned i = 0; i < in.size(); ++i) out.set(i, in[i]);
}

// A cache scope names a tenant; kept with each prompt, so it stays short.
constexpr std::size_t kMaxScopeBytes = 256;

memos::llama_exec::AdapterInput adapter_of(wire::AdapterRef::Reader a) {
  memos::llama_exec::AdapterInput in;
  in.path = a.getPath();
  auto d = a.getDigest();
  in.digest.assign(reinterpret_cast<const char*>(d.begin()), d.size());
  in.size = a.getSize();
  in.scale = a.getScale();
  in.kind = a.hasKind() && a.getKind().size() > 0 ? std::string(a.getKind().cStr()) : "lora";
  return in;
}

std::string scope_of(capnp::Data::Reader data) {
  if (data.size() > kMaxScopeBytes) {
    throw std::invalid_argument("cacheScope of " + std::to_string(data.size()) + " bytes is over " +
                                std::to_string(kMaxScopeBytes));
  }
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

std::vector<memos::llama_exec::AdapterInput> adapters_of(
    capnp::List<wire::AdapterRef>::Reader list) {
  if (list.size() > memos::llama_exec::kMaxAdaptersPerCall) {
    throw std::invalid_argument(std::to_string(list.size()) + " adapters in one call; at most " +
                                std::to_string(memos::llama_exec::kMaxAdaptersPerCall));
  }
  std::vector<memos::llama_exec::AdapterInput> out;
  for (auto a : list) out.push_back(adapter_of(a));
  return out;
}

// At most `most` texts. Throws std::invalid_argument.
std::vector<std::string> texts_of(capnp::List<capnp::Text>::Reader list, std::size_t most) {
  if (list.size() > most) {
    throw std::invalid_argument("at most " + std::to_string(most) + " texts in one call");
  }
  std::vector<std::string> out;
  for (auto t : list) out.emplace_back(t.cStr(), t.size());
  return out;
}

void set_distillation(Reply reply, std::uint64_t id, const memos::llama_exec::DistillProgress& p) {
  auto d = reply.initDistillation();
  d.setId(id);
  d.setDone(p.done);
  d.setTotal(p.total);
  d.setLoss(p.loss);
  d.setTokens(p.tokens);
}

capnp::Data::Reader data_of(const std::string& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}

class LlamaExecutorPlugin final : public memos::plugin_sdk::Plugin {
 public:
  explicit LlamaExecutorPlugin(const Config& config)
      : engine_(memos::llama_exec::read_settings(config)) {}

  memos_status handle_call(const Request& request, Reply reply, const Call& call) override {
    try {
      switch (request.which()) {
        case wire::PluginRequest::DESCRIBE:
          return describe(reply);
        case wire::PluginRequest::TOKENIZE: {
          auto t = request.getTokenize();
          auto tokens = engine_.tokenize(std::string_view(t.getText().cStr(), t.getText().size()),
                                         t.getAddSpecial());
          set_tokens(reply.initTokens(static_cast<unsigned>(tokens.size())), tokens);
          return MEMOS_OK;
        }
        case wire::PluginRequest::CHAT_TOKENS: {
          auto c = request.getChatTokens();
          auto chat =
              engine_.chat_tokens(std::string_view(c.getSystem().cStr(), c.getSystem().size()),
                                  std::string_view(c.getUser().cStr(), c.getUser().size()));
          auto out = reply.initChatTokens();
          set_tokens(out.initBlock(static_cast<unsigned>(chat.block.size())), chat.block);
          set_tokens(out.initQuestion(static_cast<unsigned>(chat.question.size())), chat.question);
          out.setFormat(chat.format);
          return MEMOS_OK;
        }
        case wire::PluginRequest::PREFILL: {
          auto p_in = request.getPrefill();
          auto r = engine_.prefill(tokens_of(p_in.getTokens()), scope_of(p_in.getCacheScope()),
                                   adapters_of(p_in.getAdapters()));
          auto p = reply.initPrefilled();
          p.setState(data_of(r.state));
          p.setTokens(r.tokens);
          p.setPrefillMs(r.prefill_ms);
          return MEMOS_OK;
        }
        case wire::PluginRequest::CHECK_ADAPTER: {
          auto facts = engine_.check_adapter(adapter_of(request.getCheckAdapter()));
          auto f = reply.initAdapterFacts();
          f.setArchitecture(facts.architecture);
          f.setBaseModel(facts.base_model);
          f.setTensors(facts.tensors);
          f.setRank(facts.rank);
          f.setAlpha(facts.alpha);
          f.setName(facts.name);
          f.setKind(facts.kind);
          return MEMOS_OK;
        }
        case wire::PluginRequest::CONTROL_VECTOR: {
          auto c = request.getControlVector();
          const std::size_t most = memos::llama_exec::kMaxControlTexts;
          const std::string gguf = engine_.control_vector(texts_of(c.getPositive(), most),
                                                          texts_of(c.getNegative(), most));
          reply.setControlVector(data_of(gguf));
          return MEMOS_OK;
        }
        case wire::PluginRequest::DISTILL_BEGIN: {
          auto d = request.getDistillBegin();
          memos::llama_exec::DistillOptions options;
          if (d.getRank() != 0) options.rank = d.getRank();
          if (d.getSteps() != 0) options.steps = d.getSteps();
          if (d.getLearningRate() != 0) options.learning_rate = d.getLearningRate();
          const std::uint64_t id = engine_.distill_begin(
              texts_of(d.getTexts(), memos::llama_exec::kMaxDistillTexts), options);
          set_distillation(reply, id, engine_.distill_progress(id));
          return MEMOS_OK;
        }
        case wire::PluginRequest::DISTILL_STEP: {
          const std::uint64_t id = request.getDistillStep();
          set_distillation(reply, id, engine_.distill_step(id));
          return MEMOS_OK;
        }
        case wire::PluginRequest::DISTILL_FINISH: {
          auto f = request.getDistillFinish();
          reply.setAdapterFile(data_of(engine_.distill_finish(f.getId(), f.getName().cStr())));
          return MEMOS_OK;
        }
        case wire::PluginRequest::DISTILL_CANCEL:
          engine_.distill_cancel(request.getDistillCancel());
          reply.setDone();
          return MEMOS_OK;
        case wire::PluginRequest::SCORE: {
          auto sc = request.getScore();
          const auto score =
              engine_.score(texts_of(sc.getTexts(), memos::llama_exec::kMaxDistillTexts),
                            adapters_of(sc.getAdapters()));
          auto out = reply.initTextScore();
          out.setNll(score.nll);
          out.setTokens(score.tokens);
          out.setCorrect(score.correct);
          return MEMOS_OK;
        }
        case wire::PluginRequest::GENERATE:
          return generate(request.getGenerate(), reply, call);
        case wire::PluginRequest::EXECUTOR_STATUS: {
          auto c = engine_.counters();
          auto s = reply.initExecutorStatus();
          s.setResidentStates(c.resident.states);
          s.setResidentBytes(c.resident.bytes);
          s.setResidentBudgetBytes(c.resident.budget);
          s.setResidentHits(c.resident.hits);
          s.setResidentMisses(c.resident.misses);
          s.setRejectedStates(c.rejected);
          s.setPromptsHeld(c.prompts_held);
          s.setPromptHits(c.prompt_hits);
          s.setPromptHitTokens(c.prompt_tokens);
          s.setAdaptersLoaded(c.adapters.loaded);
          s.setAdapterBytes(c.adapters.bytes);
          s.setAdapterBudgetBytes(c.adapters.budget);
          s.setAdapterLoads(c.adapters.loads);
          s.setDeviceFreeBytes(c.device_memory.free);
          s.setDeviceTotalBytes(c.device_memory.total);
          s.setResidentPinnedStates(c.resident.pinned_states);
          s.setResidentPinnedBytes(c.resident.pinned_bytes);
          s.setPinnedBytes(c.staging.pinned_bytes);
          s.setPinnedBudgetBytes(c.staging.pinned ? c.staging.budget : 0);
          s.setStagedOrdinary(c.staging.pinned ? c.staging.ordinary_blocks : 0);
          s.setDeviceBudgetBytes(engine_.info().device_state_budget);
          s.setDeviceStates(c.slots.held);
          s.setDeviceStateBytes(c.slots.cells_held * engine_.info().kv_cell_bytes);
          s.setDeviceStateHits(c.slots.hits);
          return MEMOS_OK;
        }
        default:
          return fail(reply, MEMOS_ERR_UNSUPPORTED,
                      "llama-executor answers describe, tokenize, chatTokens, prefill, "
                      "generate, checkAdapter, controlVector, distillBegin, distillStep, "
                      "distillFinish, distillCancel, score and executorStatus");
      }
    } catch (const std::invalid_argument& e) {
      return fail(reply, MEMOS_ERR_INVALID, e.what());
    }
  }

 private:
  memos_status describe(Reply reply) {
    const auto& info = engine_.info();
    auto caps = reply.initCapabilities();
    caps.setKinds(MEMOS_KIND_EXECUTOR);
    auto e = caps.initExecutor();
    e.setModel(info.model);
    e.setModelHash(info.model_hash);
    e.setAdapters(info.adapters);
    e.setKvType(info.kv_type);
    e.setLayout(info.layout);
    e.setStateFormat(info.state_format);
    e.setContextTokens(info.context);
    e.setBatchTokens(info.batch);
    e.setVocabulary(info.vocabulary);
    e.setDevice(info.device);
    e.setDeviceDescription(info.device_description);
    e.setDeviceNote(info.device_note);
    e.setGpuLayers(info.gpu_layers);
    e.setLayers(info.layers);
    e.setDeviceMemoryBytes(info.device_memory_bytes);
    return MEMOS_OK;
  }

  memos_status generate(wire::GenerateRequest::Reader g, Reply reply, const Call& call) {
    memos::llama_exec::GenerateInput in;
    in.tokens = tokens_of(g.getTokens());
    if (g.hasState()) {
      auto s = g.getState();
      in.state_path = s.getPath();
      auto d = s.getDigest();
      in.state_digest.assign(reinterpret_cast<const char*>(d.begin()), d.size());
      in.state_size = s.getSize();
      // Only an order: a value that cannot be one (NaN, negative) ranks last.
      const double utility = s.getUtility();
      in.state_utility = std::isfinite(utility) && utility > 0 ? utility : 0;
    }
    in.max_tokens = g.getMaxTokens();
    auto s = g.getSampling();
    in.sampling = {s.getTemperature(), s.getTopK(), s.getTopP(), s.getSeed()};
    in.export_tokens = g.getExportTokens();
    in.want_logits = g.getWantLogits();
    in.split_tokens = g.getSplitTokens();
    in.cache_scope = scope_of(g.getCacheScope());
    in.adapters = adapters_of(g.getAdapters());
    if (g.getStream() && call.streams()) {
      in.on_prefill = [&call](std::uint32_t done, std::uint32_t total) {
        call.partial([&](wire::PluginPartial::Builder p) {
          auto progress = p.initPrefill();
          progress.setDone(done);
          progress.setTotal(total);
        });
      };
      in.on_text = [&call](std::string_view text) {
        call.partial([&](wire::PluginPartial::Builder p) {
          p.setText(capnp::Text::Reader(text.data(), text.size()));
        });
      };
    }

    auto r =
        engine_.generate(in, [this](std::string_view why) { host().log(MEMOS_LOG_WARN, why); });
    auto out = reply.initGenerated();
    out.setText(r.text);
    set_tokens(out.initTokens(static_cast<unsigned>(r.tokens.size())), r.tokens);
    out.setPromptTokens(r.prompt_tokens);
    out.setReusedTokens(r.reused_tokens);
    out.setCachedTokens(r.cached_tokens);
    out.setStateStatus(r.state_status);
    out.setRestoreMs(r.restore_ms);
    out.setPrefillMs(r.prefill_ms);
    out.setFirstTokenMs(r.first_token_ms);
    out.setTotalMs(r.total_ms);
    out.setFinish(r.finish);
    if (!r.logits.empty()) {
      auto l = out.initLogits(static_cast<unsigned>(r.logits.size()));
      for (unsigned i = 0; i < r.logits.size(); ++i) l.set(i, r.logits[i]);
    }
    if (!r.exported.empty()) {
      out.setExported(data_of(r.exported));
      out.setExportPrefillMs(r.export_prefill_ms);
    }
    out.setStateResident(r.state_resident);
    return MEMOS_OK;
  }

  Engine engine_;
};

}  // namespace

MEMOS_PLUGIN(LlamaExecutorPlugin, "llama-executor", "1.0", MEMOS_KIND_EXECUTOR)
