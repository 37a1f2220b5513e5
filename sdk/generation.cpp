// sdk/generation.cpp — Client's calls on generation and the activation
// tier: chat, which answers a prompt with the cube's memories ahead of it,
// and kv_prefill, kv_list, kv_remove and kv_stats, which manage the stored
// KV states of memory blocks. Each is one request through Impl::call.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "memos/client.h"
#include "sdk/client_impl.h"
#include "sdk/reply_decode.h"
#include "sdk/wire_text.h"

namespace memos {

using sdk::decode_activation;
using sdk::ReplyReader;
using sdk::str;
using sdk::text;
using sdk::to_activation;
using sdk::wrong_reply;

namespace {

void build_chat(wire::Request::Builder r, const std::string& cube, const std::string& prompt,
                const ChatOptions& options, bool stream) {
  auto c = r.initChat();
  c.setCube(text(cube));
  c.setPrompt(text(prompt));
  c.setK(options.k);
  auto ids = c.initIds(static_cast<unsigned>(options.ids.size()));
  for (unsigned i = 0; i < ids.size(); ++i) ids.set(i, options.ids[i]);
  c.setMode(options.mode ? to_string(*options.mode) : "");  // empty: the cube's default
  c.setActivate(options.activate);
  c.setNoReuse(options.no_reuse);
  c.setMaxTokens(options.max_tokens);
  c.setTemperature(options.temperature);
  c.setTopK(options.top_k);
  c.setTopP(options.top_p);
  c.setSeed(options.seed);
  c.setStream(stream);
  auto adapters = c.initAdapters(static_cast<unsigned>(options.adapters.size()));
  for (unsigned i = 0; i < adapters.size(); ++i) {
    adapters[i].setName(text(options.adapters[i].name));
    adapters[i].setScale(options.adapters[i].scale);
  }
  c.setNoAdapters(options.no_adapters);
  const Routing& routing = options.routing;
  if (routing.auto_route) c.setBudget("auto");
  c.setRoute(text(sdk::route_text(routing)));
  c.setReferenceMs(routing.reference_ms);
  c.setContextTokens(routing.context_tokens);
  c.setLambda(routing.lambda);
}

Result<ChatReply> decode_chat(const wire::Response::Reader& r) {
  if (!r.isChat()) return wrong_reply<ChatReply>();
  auto c = r.getChat();
  ReplyReader in;
  ChatReply out;
  out.text = str(c.getText());
  for (std::uint64_t id : c.getMemories()) out.memories.push_back(id);
  out.prompt_tokens = c.getPromptTokens();
  out.block_tokens = c.getBlockTokens();
  out.reused_tokens = c.getReusedTokens();
  out.cached_tokens = c.getCachedTokens();
  out.generated_tokens = c.getGeneratedTokens();
  in.activation_status(c.getActivationStatus(), &out);
  out.activation = c.getActivation();
  out.restore_ms = c.getRestoreMs();
  out.prefill_ms = c.getPrefillMs();
  out.first_token_ms = c.getFirstTokenMs();
  out.total_ms = c.getTotalMs();
  out.finish = str(c.getFinish());
  out.resident = c.getResident();
  out.format = str(c.getFormat());
  out.saved_ms = c.getSavedMs();
  for (auto a : c.getAdapters()) out.adapters.push_back(str(a));
  out.modules = to_module_runs(in, c.getModules());
  if (c.hasRouter()) out.router = to_router_choice(in, c.getRouter());
  return in.finish(std::move(out));
}

}  // namespace

std::future<Result<ChatReply>> Client::chat_async(std::string cube, std::string prompt,
                                                  ChatOptions options) {
  return impl_->call<ChatReply>(
      [&](wire::Request::Builder r) { build_chat(r, cube, prompt, options, false); }, decode_chat);
}

std::future<Result<ChatReply>> Client::chat_async(std::string cube, std::string prompt,
                                                  ChatOptions options, ChatPieceHandler on_piece) {
  return impl_->call<ChatReply>(
      [&](wire::Request::Builder r) { build_chat(r, cube, prompt, options, true); }, decode_chat,
      [on_piece = std::move(on_piece)](const wire::Response::Reader& r) {
        if (!r.isChatPiece() || !on_piece) return;  // a piece of a kind this SDK does not know
        auto p = r.getChatPiece();
        on_piece(ChatPiece{str(p.getText()), p.getPrefillDone(), p.getPrefillTotal()});
      });
}

std::future<Result<Activation>> Client::kv_prefill_async(std::string cube,
                                                         std::vector<std::uint64_t> ids,
                                                         std::uint32_t top) {
  return impl_->call<Activation>(
      [&](wire::Request::Builder r) {
        auto p = r.initKvPrefill();
        p.setCube(text(cube));
        auto list = p.initIds(static_cast<unsigned>(ids.size()));
        for (unsigned i = 0; i < list.size(); ++i) list.set(i, ids[i]);
        p.setTop(top);
      },
      decode_activation);
}

std::future<Result<std::vector<Activation>>> Client::kv_list_async(std::string cube) {
  return impl_->call<std::vector<Activation>>(
      [&](wire::Request::Builder r) { r.initKvList().setName(text(cube)); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Activation>> {
        if (!r.isActivations()) return wrong_reply<std::vector<Activation>>();
        std::vector<Activation> out;
        for (auto a : r.getActivations()) out.push_back(to_activation(a));
        return out;
      });
}

std::future<Result<Activation>> Client::kv_remove_async(std::string cube, std::uint64_t id) {
  return impl_->call<Activation>(
      [&](wire::Request::Builder r) {
        auto x = r.initKvRemove();
        x.setCube(text(cube));
        x.setItemId(id);
      },
      decode_activation);
}

std::future<Result<KvStats>> Client::kv_stats_async() {
  return impl_->call<KvStats>([](wire::Request::Builder r) { r.setKvStats(); },
                              [](const wire::Response::Reader& r) -> Result<KvStats> {
                                if (!r.isKvStats()) return wrong_reply<KvStats>();
                                auto k = r.getKvStats();
                                KvStats out;
                                out.model = str(k.getModel());
                                out.model_hash = str(k.getModelHash());
                                out.kv_type = str(k.getKvType());
                                out.context_tokens = k.getContextTokens();
                                out.chunk_tokens = k.getChunkTokens();
                                out.items = k.getItems();
                                out.bytes = k.getBytes();
                                out.tenant_max_bytes = k.getTenantMaxBytes();
                                out.resident_states = k.getResidentStates();
                                out.resident_bytes = k.getResidentBytes();
                                out.resident_budget_bytes = k.getResidentBudgetBytes();
                                out.resident_hits = k.getResidentHits();
                                out.resident_misses = k.getResidentMisses();
                                out.prompts_held = k.getPromptsHeld();
                                out.prompt_hits = k.getPromptHits();
                                out.prompt_hit_tokens = k.getPromptHitTokens();
                                out.rejected_states = k.getRejectedStates();
                                out.adapters_loaded = k.getAdaptersLoaded();
                                out.adapter_bytes = k.getAdapterBytes();
                                out.adapter_budget_bytes = k.getAdapterBudgetBytes();
                                out.adapter_loads = k.getAdapterLoads();
                                out.device = str(k.getDevice());
                                out.device_description = str(k.getDeviceDescription());
                                out.gpu_layers = k.getGpuLayers();
                                out.layers = k.getLayers();
                                out.device_free_bytes = k.getDeviceFreeBytes();
                                out.device_total_bytes = k.getDeviceTotalBytes();
                                out.resident_pinned_states = k.getResidentPinnedStates();
                                out.resident_pinned_bytes = k.getResidentPinnedBytes();
                                out.pinned_bytes = k.getPinnedBytes();
                                out.pinned_budget_bytes = k.getPinnedBudgetBytes();
                                out.device_budget_bytes = k.getDeviceBudgetBytes();
                                out.device_states = k.getDeviceStates();
                                out.device_state_bytes = k.getDeviceStateBytes();
                                out.device_state_hits = k.getDeviceStateHits();
                                return out;
                              });
}

}  // namespace memos
