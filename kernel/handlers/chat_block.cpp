// chat_block.cpp — a chat's answering model and memory block (chat_block.h).
#include "kernel/handlers/chat_block.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/access_log.h"
#include "kernel/activation_tier.h"
#include "kernel/answer_models.h"
#include "kernel/chat_adapters.h"
#include "kernel/cube_access.h"
#include "kernel/handlers/areas.h"
#include "kernel/handlers/route_args.h"
#include "kernel/memory_block.h"
#include "kernel/plugin_executor.h"
#include "kernel/policy_use.h"
#include "kernel/request_checks.h"
#include "kernel/routing/routed_search.h"
#include "kernel/scheduler/recalls.h"
#include "kernel/scheduler/scheduler.h"
#include "kernel/search.h"
#include "kernel/serial_lane.h"

namespace memos::kernel::chat_block {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Status no_executor() {
  return Status::unavailable("no model executor: set executor.model in memosd.conf to a GGUF file",
                             false);
}

Status executor_failure(const std::string& what, const Status& s) {
  return Status::plugin_failure(
      what + ": " + s.message + (s.retryable ? " (the executor restarts; retry)" : ""),
      s.retryable);
}

void choose_answer(const Services& s, const RequestContext& ctx, const ChatArgs& args, Block* b) {
  b->answer = {s.executor, "executor.model", ""};
  if (!args.route.routed()) return;
  CostTier tier = s.config.routing.default_tier;
  std::string why;
  if (args.route.answer) {
    tier = *args.route.answer;
  } else if (const auto& own = ctx.policy->router.default_tier) {
    tier = parse_cost_tier(*own).value_or(tier);
    why = "; the tenant's default tier (policy [router])";
  } else {
    why = "; the default tier (routing.default_tier)";
  }
  if (s.answer_models) b->answer = s.answer_models->at(tier);
  b->answer_run = routing::ModuleRun{
      Module::answer, tier, 0,
      b->answer.source + (b->answer.file.empty() ? "" : " " + b->answer.file) + why};
}

Status make_block(const Services& s, const RequestContext& ctx, const ChatArgs& args, Block* out) {
  std::optional<store::ReadTxn> txn;
  if (Status st = open_cube(s, ctx, args.cube, CubeUse::read, &txn, &out->cube); !st.ok())
    return st;
  if (Status st =
          chat_adapters(s, out->answer.executor.get(), *ctx.policy, *txn, out->cube, args.adapters,
                        args.no_adapters, &out->adapters, &out->adapter_labels, &out->adapter_set);
      !st.ok()) {
    return st;
  }
  std::vector<store::Item> items;
  if (!args.ids.empty()) {
    // Named memories put into a chat's context are recalled; a prefill's
    // are not (nothing used them yet).
    const auto settings = scheduler::settings_for(s.config, *ctx.policy);
    const bool recalled = !args.prompt.empty() && out->cube.owner == ctx.tenant;
    const std::int64_t now = now_ms();
    for (std::uint64_t item : args.ids) {
      store::Item it;
      store::Status st = txn->get_item(out->cube.id, item, 0, &it);
      if (st.code == store::Errc::not_found)
        st.message = "memory " + format_id(item) + " not found";
      if (!st.ok()) return Status::from(st);
      if (!args.prompt.empty()) {
        scheduler::record_use(s.access, settings, recalled, out->cube.id, item,
                              scheduler::Recall::context, now);
      }
      items.push_back(std::move(it));
    }
  } else if (args.top > 0) {
    struct Hot {
      store::Item item;
      std::uint64_t hits;
    };
    std::vector<Hot> hot;
    store::Status failed;
    store::Status st = txn->for_each_live_item(out->cube.id, [&](const store::Item& it) {
      if (it.state != store::State::active || it.tier != store::Tier::plaintext) return;
      store::AccessStats stats;
      if (store::Status e = txn->access_stats(out->cube.id, it.id, &stats); !e.ok()) failed = e;
      hot.push_back({it, stats.hits});
    });
    if (st.ok()) st = failed;
    if (!st.ok()) return Status::from(st);
    // Most read first; then the more important, then the newer.
    std::sort(hot.begin(), hot.end(), [](const Hot& a, const Hot& b) {
      if (a.hits != b.hits) return a.hits > b.hits;
      if (a.item.importance != b.item.importance) return a.item.importance > b.item.importance;
      return a.item.id > b.item.id;
    });
    for (std::size_t i = 0; i < hot.size() && i < args.top; ++i) items.push_back(hot[i].item);
  } else {
    SearchQuery q;
    q.cubes = {out->cube};
    q.text = args.prompt;
    q.k = args.k;
    set_search_defaults(s.config.search, &q);
    q.filter.states = {State::active};
    q.filter.tiers = {Tier::plaintext};
    q.filter.now_ms = now_ms();
    std::optional<ResolvedRoute> route;
    if (args.route.routed()) {
      route.emplace();
      if (Status st = resolve_route(s, ctx, *txn, q, args.route, false, true, &*route); !st.ok())
        return st;
      out->router = route->view;
    }
    q.mode =
        route ? routing::routed_mode(route->route) : args.mode.value_or(default_mode(out->cube));
    if (Status st = check_search_mode(*ctx.policy, s.config, q.mode); !st.ok()) return st;
    std::vector<SearchHit> hits;
    std::optional<routing::RoutedResult> routed;
    if (route) {
      routing::RoutedQuery rq{q,
                              route->route,
                              args.route.reference_ms,
                              args.route.context_tokens,
                              route->max_context_tokens,
                              route->model.get()};
      routed.emplace();
      if (Status st = routing::run_routed_search(s.indexes, *txn, s.config.routing, rq, &*routed);
          !st.ok())
        return st;
      charge_route(s, ctx, routed->context_tokens);
      hits = routed->hits;
      out->modules = routed->modules;
    } else if (Status st = run_search(s.indexes, *txn, q, &hits); !st.ok()) {
      return st;
    }
    const std::int64_t now = now_ms();
    const bool owner = out->cube.owner == ctx.tenant;
    const auto settings = scheduler::settings_for(s.config, *ctx.policy);
    // The owner's chat lays the cube's working set first (scheduler.h);
    // another tenant's chat of a shared cube reads only what it retrieves.
    std::vector<store::Item> first;
    std::set<store::ItemId> in_set;
    if (owner && settings.enabled) {
      if (auto set = s.scheduler.working_set(out->cube.id)) {
        for (store::ItemId id : set->items) {
          store::Item it;
          if (!txn->get_item(out->cube.id, id, 0, &it).ok()) continue;  // removed since
          if (it.state != store::State::active || it.tier != store::Tier::plaintext) continue;
          in_set.insert(id);
          first.push_back(std::move(it));
        }
      }
    }
    for (const auto& hit : hits) {
      // A recall: the chat's own retrieval put it in the context. Members
      // of the set are there anyway and count only when retrieved too, so
      // that the set does not keep itself strong.
      scheduler::record_use(s.access, settings, owner, hit.cube, hit.id, scheduler::Recall::context,
                            now);
      if (routed || in_set.contains(hit.id)) continue;
      store::Item it;
      if (!txn->get_item(hit.cube, hit.id, 0, &it).ok()) continue;  // index a commit ahead
      items.push_back(std::move(it));
    }
    // A routed chat's block is its context: the hits and their neighbours,
    // each memory's text as compress left it.
    for (const auto& piece : routed ? routed->context : std::vector<routing::ContextPiece>{}) {
      if (in_set.contains(piece.id)) continue;
      store::Item it;
      if (!txn->get_item(piece.cube, piece.id, 0, &it).ok()) continue;
      it.text = piece.text;
      items.push_back(std::move(it));
    }
    if (!first.empty()) {
      txn.reset();
      out->memories = build_memory_block(std::move(first), std::move(items));
      out->with_working_set = true;
    }
  }
  txn.reset();
  if (!out->with_working_set) out->memories = build_memory_block(std::move(items));
  Status st = out->answer.executor->chat_tokens(out->memories.text, args.prompt, &out->block_tokens,
                                                &out->question_tokens, &out->format);
  if (args.prompt.empty()) out->question_tokens.clear();  // a prefill: the block alone
  if (!st.ok()) return executor_failure("tokenizing", st);
  return {};
}

}  // namespace memos::kernel::chat_block
