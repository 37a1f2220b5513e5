// The activation tier's listing requests: kvList, kvRemove, kvStats.
//
// They run on the worker pool, not the executor lane, and work without an
// executor (kv stats then shows the stored side only).
#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

#include "kernel/activation_tier.h"
#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/plugin_executor.h"
#include "kernel/policy_use.h"
#include "kernel/request_checks.h"

namespace memos::kernel {
namespace {

void list(const Services& s, const RequestContext& ctx, wire::CubeRef::Reader in) {
  std::string cube_name = exact(in.getName());
  if (Status st = check_cube_text(cube_name); !st.ok()) return ctx.fail(st);
  s.run_on_worker([&s, ctx, cube_name = std::move(cube_name)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    std::vector<store::Activation> all;
    store::Status st =
        txn->list_activations(cube.id, [&](const store::Activation& a) { all.push_back(a); });
    if (!st.ok()) return ctx.fail(Status::from(st));
    ctx.respond([&](wire::Response::Builder r) {
      auto list = r.initActivations(static_cast<unsigned>(all.size()));
      for (unsigned i = 0; i < all.size(); ++i) set_activation(list[i], all[i], cube_name);
    });
  });
}

void remove(const Services& s, const RequestContext& ctx, wire::ItemRef::Reader in) {
  std::string cube_name = exact(in.getCube());
  const std::uint64_t item = in.getItemId();
  if (Status st = check_owners_cube(cube_name, "remove its activation states"); !st.ok())
    return ctx.fail(st);
  if (Status st = check_cube_name(cube_name); !st.ok()) return ctx.fail(st);
  // remove() waits for its commit: a worker, not the loop.
  s.run_on_worker([&s, ctx, item, cube_name = std::move(cube_name)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::owner, &txn, &cube); !st.ok())
      return ctx.fail(st);
    txn.reset();
    store::Activation gone;
    Status st = s.activations.remove(cube.id, item, &gone);
    if (st.code == Code::not_found) st.message = "no activation item " + format_id(item);
    if (!st.ok()) return ctx.fail(st);
    ctx.respond(
        [&](wire::Response::Builder r) { set_activation(r.initActivation(), gone, cube.name); });
  });
}

void stats(const Services& s, const RequestContext& ctx) {
  s.run_on_worker([&s, ctx] {
    std::optional<store::ReadTxn> txn;
    store::ActivationUsage usage;
    store::Status st = s.store.begin_read(&txn);
    if (st.ok()) st = txn->activation_usage(ctx.tenant, &usage);
    if (!st.ok()) return ctx.fail(Status::from(st));
    txn.reset();
    ExecutorStatus es;
    if (s.executor) {
      if (Status e = s.executor->status(&es); !e.ok())
        spdlog::warn("executor status: {}", e.message);  // the stored side still answers
    }
    const ActivationConfig& config = s.activations.config();
    ctx.respond([&](wire::Response::Builder r) {
      auto k = r.initKvStats();
      if (s.executor) {
        const ExecutorInfo& info = s.executor->info();
        k.setModel(info.model);
        k.setModelHash(info.key.model_hash);
        k.setKvType(info.key.kv_type);
        k.setContextTokens(info.context_tokens);
      }
      k.setItems(usage.count);
      k.setBytes(usage.bytes);
      k.setTenantMaxBytes(activation_budget_mb(*ctx.policy).value_or(config.tenant_max_mb) << 20);
      k.setResidentStates(es.resident_states);
      k.setResidentBytes(es.resident_bytes);
      k.setResidentBudgetBytes(es.resident_budget_bytes);
      k.setResidentHits(es.resident_hits);
      k.setResidentMisses(es.resident_misses);
      k.setRejectedStates(es.rejected_states);
      k.setPromptsHeld(es.prompts_held);
      k.setPromptHits(es.prompt_hits);
      k.setPromptHitTokens(es.prompt_hit_tokens);
      k.setChunkTokens(config.chunk_tokens);
      k.setAdaptersLoaded(es.adapters_loaded);
      k.setAdapterBytes(es.adapter_bytes);
      k.setAdapterBudgetBytes(es.adapter_budget_bytes);
      k.setAdapterLoads(es.adapter_loads);
      if (s.executor) {
        const ExecutorInfo& info = s.executor->info();
        k.setDevice(info.device);
        k.setDeviceDescription(info.device_description);
        k.setGpuLayers(info.gpu_layers);
        k.setLayers(info.layers);
      }
      k.setDeviceFreeBytes(es.device_free_bytes);
      k.setDeviceTotalBytes(es.device_total_bytes);
      k.setResidentPinnedStates(es.resident_pinned_states);
      k.setResidentPinnedBytes(es.resident_pinned_bytes);
      k.setPinnedBytes(es.pinned_bytes);
      k.setPinnedBudgetBytes(es.pinned_budget_bytes);
      k.setDeviceBudgetBytes(es.device_budget_bytes);
      k.setDeviceStates(es.device_states);
      k.setDeviceStateBytes(es.device_state_bytes);
      k.setDeviceStateHits(es.device_state_hits);
    });
  });
}

}  // namespace

void add_kv_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::KV_LIST, [&s](const RequestContext& c, R::Reader r) { list(s, c, r.getKvList()); });
  table.add(R::KV_REMOVE,
            [&s](const RequestContext& c, R::Reader r) { remove(s, c, r.getKvRemove()); });
  table.add(R::KV_STATS, [&s](const RequestContext& c, R::Reader) { stats(s, c); });
}

}  // namespace memos::kernel
