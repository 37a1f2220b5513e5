// Generation requests: chat and kvPrefill (kv ls, rm and stats: kv.cpp).
//
// Chat and prefill call the model executor, which may take seconds to
// minutes on a CPU: they run in order on the executor lane (services.h; the
// executor runs one call at a time anyway), never on the worker pool.
// Without an executor (no executor.model) they are refused with a clear
// error.
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
#include "kernel/handlers/chat_block.h"
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

namespace memos::kernel {
namespace {

constexpr std::uint32_t kMaxChatK = 100;
constexpr std::size_t kMaxNamedMemories = 1000;

using chat_block::Block;
using chat_block::ChatArgs;
using chat_block::choose_answer;
using chat_block::executor_failure;
using chat_block::kDefaultChatK;
using chat_block::kDefaultMaxTokens;
using chat_block::make_block;
using chat_block::ms_since;
using chat_block::no_executor;

// The executor's description with the block's adapter set in its key: the
// activation tier finds and stores states made under exactly that set.
ExecutorInfo keyed_info(const ExecutorInfo& info, const Block& b) {
  ExecutorInfo keyed = info;
  keyed.key.adapters = b.adapter_set;
  return keyed;
}

// Queues `run` on the executor lane; queued when memosd stops, the request
// is answered unavailable (retryable) instead. The block's search sees every
// write answered before the request (a memory added just before the
// question is found): the job is queued once they are searchable, which
// costs at most the indexing lag.
void on_lane(const Services& s, const RequestContext& ctx, ChatArgs args,
             void (*run)(const Services&, const RequestContext&, const ChatArgs&)) {
  auto shared = std::make_shared<const ChatArgs>(std::move(args));
  s.indexes.when_indexed(s.indexes.accepted(), [&s, ctx, shared, run] {
    s.executor_lane.post([&s, ctx, shared, run](bool stopping) {
      if (stopping) return ctx.fail(Status::unavailable("memosd is stopping"));
      run(s, ctx, *shared);
    });
  });
}

// Streams a chat (Chat.stream): the executor's prefill progress and each
// piece of its text go to the client as chatPiece replies while it works.
void stream_pieces(const RequestContext& ctx, GenerateArgs* ga) {
  ga->on_prefill = [&ctx](std::uint32_t done, std::uint32_t total) {
    ctx.partial([&](wire::Response::Builder r) {
      auto p = r.initChatPiece();
      p.setPrefillDone(done);
      p.setPrefillTotal(total);
    });
  };
  ga->on_text = [&ctx](std::string_view text) {
    ctx.partial([&](wire::Response::Builder r) {
      r.initChatPiece().setText(capnp::Text::Reader(text.data(), text.size()));
    });
  };
}

// About what restoring `reused` tokens of `state` saved: their share of the
// time its block took to decode when the state was made, less the restore.
// Negative when restoring cost more than decoding would have; 0 when the
// state's prefill time is unknown (made before memosd recorded it).
double prefill_saved_ms(const store::Activation& state, std::uint32_t reused, double restore_ms) {
  if (state.prefill_ms <= 0 || state.tokens.empty()) return 0;
  // The executor may have reused more than the state holds (a recent
  // prompt that covers the question too): what the state saved is its own.
  const double covered = std::min<double>(reused, static_cast<double>(state.tokens.size()));
  return state.prefill_ms * covered / static_cast<double>(state.tokens.size()) - restore_ms;
}

void run_chat(const Services& s, const RequestContext& ctx, const ChatArgs& args) {
  ActivationTier& tier = s.activations;
  Block b;
  choose_answer(s, ctx, args, &b);
  if (Status st = make_block(s, ctx, args, &b); !st.ok()) return ctx.fail(st);
  PluginExecutor& executor = *b.answer.executor;
  // Its states are keyed by its own model: another tier's are never used.
  const ExecutorInfo info = keyed_info(executor.info(), b);
  std::vector<std::int32_t> tokens = b.block_tokens;
  tokens.insert(tokens.end(), b.question_tokens.begin(), b.question_tokens.end());
  if (tokens.size() >= info.context_tokens) {
    return ctx.fail(
        Status::too_large("the memory block and prompt are " + std::to_string(tokens.size()) +
                          " tokens; the model's context holds " +
                          std::to_string(info.context_tokens) + " (ask for fewer memories)"));
  }
  std::optional<FoundState> found;
  if (!args.no_reuse && !args.no_states) {
    if (Status st = tier.find(ctx.tenant, info.key, tokens, &found); !st.ok()) {
      spdlog::warn("looking up an activation: {}", st.message);  // then decode it all
    }
  }
  StateRef ref;
  GenerateArgs ga;
  ga.tokens = tokens;
  ga.adapters = b.adapters;
  ActivationTier::Touch counted;  // waited for below, after the generation
  if (found) {
    ref = tier.state_ref(found->activation);
    ga.state = &ref;
    counted = tier.touch(found->activation);
  }
  ga.max_tokens = std::min<std::uint32_t>(
      args.max_tokens, info.context_tokens - static_cast<std::uint32_t>(tokens.size()));
  ga.temperature = args.temperature;
  ga.top_k = args.top_k;
  ga.top_p = args.top_p;
  ga.seed = args.seed;
  // The executor may start from the tenant's own last prompts (a shared
  // cube's included: they are this tenant's prompts, not the owner's
  // states); no_reuse decodes everything, from an empty context.
  if (!args.no_reuse) ga.cache_scope = cache_scope(ctx.tenant);
  const bool block_covered = found && found->shared >= b.block_tokens.size();
  if (args.activate && !block_covered && b.block_tokens.size() >= tier.config().chunk_tokens) {
    ga.export_tokens = static_cast<std::uint32_t>(b.block_tokens.size());
  }
  // Decoded without a state (none stored, or refused), the block is still
  // decoded apart from the question, so an answer does not depend on whether
  // its block was restored.
  if (!b.question_tokens.empty())
    ga.split_tokens = static_cast<std::uint32_t>(b.block_tokens.size());
  if (args.stream) stream_pieces(ctx, &ga);
  GenerateResult gr;
  if (Status st = executor.generate(ga, &gr); !st.ok())
    return ctx.fail(executor_failure("generation failed", st));
  if (b.answer_run) {
    b.answer_run->ms = gr.total_ms;
    b.modules.push_back(*b.answer_run);
  }
  ActivationOutcome outcome;
  std::uint64_t activation = 0;
  if (found && gr.restore.restored) {
    outcome.restored = true;
    activation = found->activation.id;
  } else if (found) {
    // A state keyed for exactly this model and prefix that the executor
    // refused is damaged: forget it (the next activation makes a new one).
    outcome.rejected = gr.restore.rejected;
    spdlog::warn("activation {} was not used ({}); removing it", found->activation.id,
                 to_string(gr.restore));
    tier.drop_unusable(found->activation);
  }
  counted.wait();
  if (!args.no_reuse && !args.no_states) tier.count_chat(outcome.restored);
  if (!gr.exported.empty()) {
    store::Activation stored;
    Status st = tier.store(ctx.tenant, b.cube.id, info, b.block_tokens, b.memories.ids, gr.exported,
                           block_prefill_ms(gr, b.block_tokens.size()), &stored,
                           activation_budget_mb(*ctx.policy));
    if (st.ok()) {
      activation = stored.id;
      outcome.stored = true;
    } else {
      spdlog::warn("storing the activation of a memory block: {}", st.message);
      outcome.not_stored = st.message;
    }
  }
  if (b.cube.owner == ctx.tenant) {
    s.scheduler.note_chat(s, b.cube, static_cast<std::uint32_t>(tokens.size()),
                          outcome.restored ? gr.reused_tokens : 0);
  }
  const double total_ms = ms_since(args.received);
  const double saved_ms =
      outcome.restored ? prefill_saved_ms(found->activation, gr.reused_tokens, gr.restore_ms) : 0;
  ctx.respond([&](wire::Response::Builder r) {
    auto c = r.initChat();
    c.setText(gr.text);
    auto mem = c.initMemories(static_cast<unsigned>(b.memories.ids.size()));
    for (unsigned i = 0; i < mem.size(); ++i) mem.set(i, b.memories.ids[i]);
    c.setPromptTokens(static_cast<std::uint32_t>(tokens.size()));
    c.setBlockTokens(static_cast<std::uint32_t>(b.block_tokens.size()));
    c.setReusedTokens(gr.reused_tokens);
    c.setCachedTokens(gr.cached_tokens);
    c.setGeneratedTokens(static_cast<std::uint32_t>(gr.tokens.size()));
    c.setActivationStatus(to_string(outcome));
    c.setActivation(activation);
    c.setRestoreMs(gr.restore_ms);
    c.setPrefillMs(gr.prefill_ms);
    c.setFirstTokenMs(gr.first_token_ms);
    c.setTotalMs(total_ms);
    c.setFinish(gr.finish);
    c.setResident(gr.state_resident);
    c.setFormat(b.format);
    c.setSavedMs(saved_ms);
    auto labels = c.initAdapters(static_cast<unsigned>(b.adapter_labels.size()));
    for (unsigned i = 0; i < labels.size(); ++i) labels.set(i, b.adapter_labels[i]);
    set_module_runs(c.initModules(static_cast<unsigned>(b.modules.size())), b.modules);
    if (b.router) set_router_choice(c.initRouter(), *b.router);
  });
}

// Errors: unavailable (no executor), bad_request, too_large.
Status read_chat(const Services& s, wire::Chat::Reader in, ChatArgs* args) {
  if (!s.executor) return no_executor();
  args->cube = exact(in.getCube());
  args->prompt = exact(in.getPrompt());
  if (Status st = check_cube_text(args->cube); !st.ok()) return st;
  if (args->prompt.empty()) return Status::bad_request("the prompt is empty");
  if (Status st = check_text(args->prompt, s.config.store); !st.ok()) return st;
  args->k = in.getK() == 0 ? kDefaultChatK : in.getK();
  if (args->k > kMaxChatK)
    return Status::bad_request("k is at most " + std::to_string(kMaxChatK) + " for chat");
  if (in.getIds().size() > kMaxNamedMemories)
    return Status::bad_request("at most 1000 memories in one block");
  for (std::uint64_t m : in.getIds()) args->ids.push_back(m);
  if (std::string_view mode = exact_view(in.getMode()); !mode.empty()) {
    args->mode = parse_search_mode(mode);
    if (!args->mode) {
      return Status::bad_request("mode '" + std::string(mode.substr(0, 32)) + "' is unknown (" +
                                 search_mode_names() + ")");
    }
  }
  args->activate = in.getActivate();
  args->no_reuse = in.getNoReuse();
  args->stream = in.getStream();
  args->max_tokens = in.getMaxTokens() == 0 ? kDefaultMaxTokens : in.getMaxTokens();
  if (args->max_tokens > s.config.executor.max_tokens) {
    return Status::bad_request("max tokens is at most " +
                               std::to_string(s.config.executor.max_tokens) +
                               " (executor.max_tokens)");
  }
  args->temperature = in.getTemperature();
  args->top_p = in.getTopP();
  if (!std::isfinite(args->temperature) || args->temperature < 0 || args->temperature > 10)
    return Status::bad_request("temperature must be between 0 and 10");
  if (!std::isfinite(args->top_p) || args->top_p < 0 || args->top_p > 1)
    return Status::bad_request("top-p must be between 0 and 1");
  args->top_k = in.getTopK();
  args->seed = in.getSeed();
  if (in.getAdapters().size() > 8) return Status::bad_request("at most 8 adapters in one chat");
  for (auto a : in.getAdapters()) {
    std::string why;
    auto choice = policies::parse_adapter_choice(exact_view(a.getName()), &why);
    if (!choice || choice->name != exact_view(a.getName())) {
      return Status::bad_request(choice ? "an adapter's name holds ':'" : why);
    }
    choice->scale = a.getScale();
    if (!std::isfinite(choice->scale) || std::fabs(choice->scale) > 16) {
      return Status::bad_request("an adapter's scale must be a number in [-16, 16]");
    }
    args->adapters.push_back(std::move(*choice));
  }
  args->no_adapters = in.getNoAdapters();
  if (args->no_adapters && !args->adapters.empty()) {
    return Status::bad_request("a chat names adapters or asks for none, not both");
  }
  if (Status st =
          read_route_args(exact_view(in.getBudget()), exact_view(in.getRoute()),
                          in.getReferenceMs(), in.getContextTokens(), in.getLambda(), &args->route);
      !st.ok())
    return st;
  if (args->route.routed() && (!args->ids.empty() || args->mode)) {
    return Status::bad_request(
        "a budget or route does not combine with named memories or a mode (its retrieve tier "
        "chooses the mode)");
  }
  return {};
}

void chat(const Services& s, const RequestContext& ctx, wire::Chat::Reader in) {
  ChatArgs args;
  if (Status st = read_chat(s, in, &args); !st.ok()) return ctx.fail(st);
  // A shared cube's activation states are its owner's (CubeUse::owner):
  // a chat of another tenant reads its memories, and decodes them.
  if (names_shared_cube(args.cube)) {
    if (args.activate) {
      return ctx.fail(check_owners_cube(args.cube, "store its activation states"));
    }
    args.no_states = true;
  }
  // Without the activation tier a chat neither restores nor stores states.
  if (!ctx.policy->tiers.activation) {
    if (args.activate) {
      return ctx.fail(check_tier(*ctx.policy, store::Tier::activation));
    }
    args.no_states = true;
  }
  if (s.executor) {
    if (Status st = check_executor(*ctx.policy, s.config, s.executor->info().device); !st.ok())
      return ctx.fail(st);
  }
  on_lane(s, ctx, std::move(args), &run_chat);
}

void respond_activation(const RequestContext& ctx, const store::Activation& a,
                        const std::string& cube, double prefill_ms) {
  ctx.respond([&](wire::Response::Builder r) {
    auto out = r.initActivation();
    set_activation(out, a, cube);
    out.setPrefillMs(prefill_ms);
  });
}

void run_prefill(const Services& s, const RequestContext& ctx, const ChatArgs& args) {
  ActivationTier& tier = s.activations;
  Block b;
  choose_answer(s, ctx, args, &b);  // not routed: executor.model's
  if (Status st = make_block(s, ctx, args, &b); !st.ok()) return ctx.fail(st);
  const ExecutorInfo info = keyed_info(s.executor->info(), b);
  if (b.block_tokens.size() > info.context_tokens) {
    return ctx.fail(Status::too_large(
        "the memory block is " + std::to_string(b.block_tokens.size()) +
        " tokens; the model's context holds " + std::to_string(info.context_tokens)));
  }
  std::optional<FoundState> found;
  if (Status st = tier.find(ctx.tenant, info.key, b.block_tokens, &found); !st.ok())
    spdlog::warn("looking up an activation: {}", st.message);
  if (found && found->activation.tokens == b.block_tokens)
    return respond_activation(ctx, found->activation, b.cube.name, 0);
  if (b.block_tokens.size() < tier.config().chunk_tokens) {
    return ctx.fail(Status::conflict(
        "the memory block has " + std::to_string(b.block_tokens.size()) +
        " tokens, less than one chunk (activation.chunk_tokens): not worth keeping"));
  }
  std::string state;
  double prefill_ms = 0;
  if (Status st = s.executor->prefill(b.block_tokens, cache_scope(ctx.tenant), &state, &prefill_ms,
                                      b.adapters);
      !st.ok())
    return ctx.fail(executor_failure("prefill failed", st));
  store::Activation stored;
  if (Status st = tier.store(ctx.tenant, b.cube.id, info, b.block_tokens, b.memories.ids, state,
                             prefill_ms, &stored, activation_budget_mb(*ctx.policy));
      !st.ok()) {
    return ctx.fail(st);
  }
  respond_activation(ctx, stored, b.cube.name, prefill_ms);
}

void prefill(const Services& s, const RequestContext& ctx, wire::KvPrefill::Reader in) {
  if (Status st = check_tier(*ctx.policy, store::Tier::activation); !st.ok()) return ctx.fail(st);
  if (!s.executor) return ctx.fail(no_executor());
  if (Status st = check_executor(*ctx.policy, s.config, s.executor->info().device); !st.ok())
    return ctx.fail(st);
  ChatArgs args;
  args.cube = exact(in.getCube());
  if (Status st = check_owners_cube(args.cube, "prefill its activation states"); !st.ok())
    return ctx.fail(st);
  if (Status st = check_cube_name(args.cube); !st.ok()) return ctx.fail(st);
  if (in.getIds().size() > kMaxNamedMemories)
    return ctx.fail(Status::bad_request("at most 1000 memories in one block"));
  for (std::uint64_t m : in.getIds()) args.ids.push_back(m);
  args.top = in.getTop();
  if (args.ids.empty() == (args.top == 0)) {
    return ctx.fail(
        Status::bad_request("name the memories (ids) or how many of the most read (top)"));
  }
  if (args.top > kMaxNamedMemories) return ctx.fail(Status::bad_request("top is at most 1000"));
  on_lane(s, ctx, std::move(args), &run_prefill);
}

}  // namespace

void add_generation_handlers(DispatchTable& table, const Services& s) {
  using R = wire::Request;
  table.add(R::CHAT, [&s](const RequestContext& c, R::Reader r) { chat(s, c, r.getChat()); });
  table.add(R::KV_PREFILL,
            [&s](const RequestContext& c, R::Reader r) { prefill(s, c, r.getKvPrefill()); });
}

}  // namespace memos::kernel
