#include "kernel/plugin_executor.h"

#include <capnp/message.h>

#include <algorithm>
#include <string>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/plugin_call.h"
#include "memcube/blob_store.h"
#include "memos/adapter_set.h"

namespace memos::kernel {
namespace {

namespace pw = plugin_wire;

constexpr std::size_t kSmallReply = 1 << 20;

void set_tokens(capnp::List<std::int32_t>::Builder list, const std::vector<std::int32_t>& tokens) {
  for (unsigned i = 0; i < tokens.size(); ++i) list.set(i, tokens[i]);
}

capnp::Data::Reader bytes_of(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// What the executor refuses (an adapter file, texts, a distillation) is
// the client's error, not the plugin's; a host that died stays retryable.
Status refused_as_bad_request(Status st) {
  if (!st.ok() && !st.retryable) return Status::bad_request(st.message);
  return st;
}

}  // namespace

Status PluginExecutor::chat_tokens(const std::string& system, const std::string& user,
                                   std::vector<std::int32_t>* block,
                                   std::vector<std::int32_t>* question, std::string* format) const {
  capnp::MallocMessageBuilder message;
  auto c = message.initRoot<pw::PluginRequest>().initChatTokens();
  c.setSystem(capnp::Text::Reader(system.data(), system.size()));
  c.setUser(capnp::Text::Reader(user.data(), user.size()));
  auto copy = [](capnp::List<std::int32_t>::Reader from, std::vector<std::int32_t>* to) {
    to->clear();
    for (std::int32_t token : from) to->push_back(token);
  };
  // A token per byte at most, four bytes each, plus the template and framing.
  return call_plugin("", *channel_, request_bytes(message), timeout_,
                     (system.size() + user.size()) * 8 + kSmallReply,
                     [&](pw::PluginResponse::Reader r) -> std::string {
                       if (!r.isChatTokens()) return "chatTokens did not return tokens";
                       copy(r.getChatTokens().getBlock(), block);
                       copy(r.getChatTokens().getQuestion(), question);
                       *format = r.getChatTokens().getFormat();
                       return block->empty() ? "the memory block has no tokens" : "";
                     });
}

namespace {

void set_adapter(pw::AdapterRef::Builder b, const AdapterRef& a) {
  b.setPath(a.path);
  b.setDigest(capnp::Data::Reader(a.digest.data(), a.digest.size()));
  b.setSize(a.size);
  b.setScale(a.scale);
  b.setKind(a.kind);
}

}  // namespace

std::string adapter_set_text(std::vector<AdapterRef>* adapters) {
  std::vector<adapters::Member> members;
  for (const AdapterRef& a : *adapters) {
    members.push_back({store::to_hex(a.digest), a.scale, a.kind});
  }
  std::string text = adapters::canonical_set(members);
  // The same order for the refs, so the executor is sent the set as keyed.
  std::vector<AdapterRef> sorted;
  for (const auto& m : members) {
    for (const AdapterRef& a : *adapters) {
      if (store::to_hex(a.digest) == m.digest_hex && a.scale == m.scale && a.kind == m.kind) {
        sorted.push_back(a);
        break;
      }
    }
  }
  *adapters = std::move(sorted);
  return text;
}

Status PluginExecutor::check_adapter(const AdapterRef& adapter, AdapterFacts* out) const {
  capnp::MallocMessageBuilder message;
  set_adapter(message.initRoot<pw::PluginRequest>().initCheckAdapter(), adapter);
  Status st = call_plugin("", *channel_, request_bytes(message), timeout_, kSmallReply,
                          [&](pw::PluginResponse::Reader r) -> std::string {
                            if (!r.isAdapterFacts()) return "checkAdapter did not return facts";
                            auto f = r.getAdapterFacts();
                            out->architecture = f.getArchitecture();
                            out->base_model = f.getBaseModel();
                            out->name = f.getName();
                            out->tensors = f.getTensors();
                            out->rank = f.getRank();
                            out->alpha = f.getAlpha();
                            out->kind = f.getKind().size() > 0 ? f.getKind().cStr() : "lora";
                            if (out->kind != "lora" && out->kind != "cvec")
                              return "checkAdapter answered an unknown kind";
                            return "";
                          });
  return refused_as_bad_request(st);
}

Status PluginExecutor::control_vector(const std::vector<std::string>& positive,
                                      const std::vector<std::string>& negative,
                                      std::string* gguf) const {
  capnp::MallocMessageBuilder message;
  auto c = message.initRoot<pw::PluginRequest>().initControlVector();
  auto p = c.initPositive(static_cast<unsigned>(positive.size()));
  for (unsigned i = 0; i < p.size(); ++i) p.set(i, positive[i]);
  auto n = c.initNegative(static_cast<unsigned>(negative.size()));
  for (unsigned i = 0; i < n.size(); ++i) n.set(i, negative[i]);
  Status st = call_plugin("", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
                          [&](pw::PluginResponse::Reader r) -> std::string {
                            if (!r.isControlVector()) return "controlVector did not return one";
                            auto d = r.getControlVector();
                            gguf->assign(reinterpret_cast<const char*>(d.begin()), d.size());
                            return gguf->empty() ? "controlVector returned nothing" : "";
                          });
  return refused_as_bad_request(st);
}

namespace {

std::string read_distillation(pw::PluginResponse::Reader r, PluginExecutor::DistillProgress* out) {
  if (!r.isDistillation()) return "the distillation call returned no progress";
  auto d = r.getDistillation();
  out->id = d.getId();
  out->done = d.getDone();
  out->total = d.getTotal();
  out->tokens = d.getTokens();
  out->loss = d.getLoss();
  return out->id == 0 || out->done > out->total ? "the distillation's progress is malformed" : "";
}

}  // namespace

Status PluginExecutor::distill_begin(const std::vector<std::string>& texts,
                                     const DistillOptions& options, DistillProgress* out) const {
  capnp::MallocMessageBuilder message;
  auto d = message.initRoot<pw::PluginRequest>().initDistillBegin();
  auto t = d.initTexts(static_cast<unsigned>(texts.size()));
  for (unsigned i = 0; i < t.size(); ++i) t.set(i, texts[i]);
  d.setRank(options.rank);
  d.setSteps(options.steps);
  d.setLearningRate(options.learning_rate);
  return refused_as_bad_request(
      call_plugin("", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
                  [&](pw::PluginResponse::Reader r) { return read_distillation(r, out); }));
}

Status PluginExecutor::distill_step(std::uint64_t id, DistillProgress* out) const {
  capnp::MallocMessageBuilder message;
  message.initRoot<pw::PluginRequest>().setDistillStep(id);
  return refused_as_bad_request(
      call_plugin("", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
                  [&](pw::PluginResponse::Reader r) { return read_distillation(r, out); }));
}

Status PluginExecutor::distill_finish(std::uint64_t id, const std::string& name,
                                      std::string* gguf) const {
  capnp::MallocMessageBuilder message;
  auto f = message.initRoot<pw::PluginRequest>().initDistillFinish();
  f.setId(id);
  f.setName(name);
  return refused_as_bad_request(
      call_plugin("", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
                  [&](pw::PluginResponse::Reader r) -> std::string {
                    if (!r.isAdapterFile()) return "distillFinish did not return an adapter";
                    auto d = r.getAdapterFile();
                    gguf->assign(reinterpret_cast<const char*>(d.begin()), d.size());
                    return gguf->empty() ? "distillFinish returned nothing" : "";
                  }));
}

Status PluginExecutor::distill_cancel(std::uint64_t id) const {
  capnp::MallocMessageBuilder message;
  message.initRoot<pw::PluginRequest>().setDistillCancel(id);
  return refused_as_bad_request(
      call_plugin("", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
                  [](pw::PluginResponse::Reader r) -> std::string {
                    return r.isDone() ? "" : "distillCancel did not answer done";
                  }));
}

std::string cache_scope(store::TenantId tenant) {
  return "uid " + std::to_string(tenant);
}

Status PluginExecutor::prefill(const std::vector<std::int32_t>& tokens,
                               const std::string& cache_scope, std::string* state,
                               double* prefill_ms, const std::vector<AdapterRef>& adapters) const {
  capnp::MallocMessageBuilder message;
  auto p = message.initRoot<pw::PluginRequest>().initPrefill();
  set_tokens(p.initTokens(static_cast<unsigned>(tokens.size())), tokens);
  p.setCacheScope(bytes_of(cache_scope));
  auto refs = p.initAdapters(static_cast<unsigned>(adapters.size()));
  for (unsigned i = 0; i < refs.size(); ++i) set_adapter(refs[i], adapters[i]);
  return call_plugin("", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
                     [&](pw::PluginResponse::Reader r) -> std::string {
                       if (!r.isPrefilled()) return "prefill did not return a state";
                       auto d = r.getPrefilled().getState();
                       state->assign(reinterpret_cast<const char*>(d.begin()), d.size());
                       *prefill_ms = r.getPrefilled().getPrefillMs();
                       return state->empty() ? "prefill returned an empty state" : "";
                     });
}

Status PluginExecutor::generate(const GenerateArgs& args, GenerateResult* out) const {
  capnp::MallocMessageBuilder message;
  auto g = message.initRoot<pw::PluginRequest>().initGenerate();
  set_tokens(g.initTokens(static_cast<unsigned>(args.tokens.size())), args.tokens);
  if (args.state) {
    auto s = g.initState();
    s.setPath(args.state->path);
    s.setDigest(capnp::Data::Reader(args.state->digest.data(), args.state->digest.size()));
    s.setSize(args.state->size);
    s.setUtility(args.state->utility);
  }
  g.setMaxTokens(args.max_tokens);
  auto sampling = g.initSampling();
  sampling.setTemperature(args.temperature);
  sampling.setTopK(args.top_k);
  sampling.setTopP(args.top_p);
  sampling.setSeed(args.seed);
  g.setExportTokens(args.export_tokens);
  g.setSplitTokens(args.split_tokens);
  g.setWantLogits(args.want_logits);
  g.setCacheScope(bytes_of(args.cache_scope));
  auto adapters = g.initAdapters(static_cast<unsigned>(args.adapters.size()));
  for (unsigned i = 0; i < adapters.size(); ++i) set_adapter(adapters[i], args.adapters[i]);
  const bool streaming = args.on_prefill || args.on_text;
  g.setStream(streaming);
  PartialUse on_partial;
  if (streaming) {
    on_partial = [&args](pw::PluginPartial::Reader p) {
      if (p.isText() && args.on_text) {
        args.on_text(std::string_view(p.getText().cStr(), p.getText().size()));
      } else if (p.isPrefill() && args.on_prefill) {
        args.on_prefill(p.getPrefill().getDone(), p.getPrefill().getTotal());
      }
    };
  }
  return call_plugin(
      "", *channel_, request_bytes(message), timeout_, max_reply_bytes_,
      [&](pw::PluginResponse::Reader r) -> std::string {
        if (!r.isGenerated()) return "generate did not return a generation";
        auto d = r.getGenerated();
        out->text = d.getText();
        out->tokens.clear();
        for (std::int32_t t : d.getTokens()) out->tokens.push_back(t);
        out->prompt_tokens = d.getPromptTokens();
        out->reused_tokens = d.getReusedTokens();
        out->cached_tokens = std::min(d.getCachedTokens(), out->reused_tokens);
        // The executor says none, restored or rejected: why; never stored
        // (storing is the kernel's).
        auto restore = parse_activation_outcome(d.getStateStatus().cStr());
        if (!restore || restore->stored) return "generate returned an unknown state status";
        out->restore = std::move(*restore);
        out->state_resident = d.getStateResident();
        out->restore_ms = d.getRestoreMs();
        out->prefill_ms = d.getPrefillMs();
        out->first_token_ms = d.getFirstTokenMs();
        out->total_ms = d.getTotalMs();
        out->finish = d.getFinish();
        out->logits.clear();
        for (float f : d.getLogits()) out->logits.push_back(f);
        auto e = d.getExported();
        out->exported.assign(reinterpret_cast<const char*>(e.begin()), e.size());
        out->export_prefill_ms = d.getExportPrefillMs();
        return "";
      },
      on_partial);
}

Status PluginExecutor::status(ExecutorStatus* out) const {
  capnp::MallocMessageBuilder message;
  message.initRoot<pw::PluginRequest>().setExecutorStatus();
  return call_plugin("", *channel_, request_bytes(message), timeout_, kSmallReply,
                     [&](pw::PluginResponse::Reader r) -> std::string {
                       if (!r.isExecutorStatus()) return "executorStatus did not return a status";
                       auto s = r.getExecutorStatus();
                       out->resident_states = s.getResidentStates();
                       out->resident_bytes = s.getResidentBytes();
                       out->resident_budget_bytes = s.getResidentBudgetBytes();
                       out->resident_hits = s.getResidentHits();
                       out->resident_misses = s.getResidentMisses();
                       out->prompts_held = s.getPromptsHeld();
                       out->prompt_hits = s.getPromptHits();
                       out->prompt_hit_tokens = s.getPromptHitTokens();
                       out->rejected_states = s.getRejectedStates();
                       out->device_free_bytes = s.getDeviceFreeBytes();
                       out->device_total_bytes = s.getDeviceTotalBytes();
                       out->resident_pinned_states = s.getResidentPinnedStates();
                       out->resident_pinned_bytes = s.getResidentPinnedBytes();
                       out->pinned_bytes = s.getPinnedBytes();
                       out->pinned_budget_bytes = s.getPinnedBudgetBytes();
                       out->staged_ordinary = s.getStagedOrdinary();
                       out->device_budget_bytes = s.getDeviceBudgetBytes();
                       out->device_states = s.getDeviceStates();
                       out->device_state_bytes = s.getDeviceStateBytes();
                       out->device_state_hits = s.getDeviceStateHits();
                       out->adapters_loaded = s.getAdaptersLoaded();
                       out->adapter_bytes = s.getAdapterBytes();
                       out->adapter_budget_bytes = s.getAdapterBudgetBytes();
                       out->adapter_loads = s.getAdapterLoads();
                       return "";
                     });
}

double block_prefill_ms(const GenerateResult& gr, std::size_t block_tokens) {
  if (gr.export_prefill_ms <= 0 || gr.reused_tokens >= block_tokens) return 0;
  return gr.export_prefill_ms * static_cast<double>(block_tokens) /
         static_cast<double>(block_tokens - gr.reused_tokens);
}

}  // namespace memos::kernel
