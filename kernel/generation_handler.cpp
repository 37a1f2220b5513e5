#include "kernel/generation_handler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "kernel/access_log.h"
#include "kernel/memory_block.h"
#include "kernel/search.h"

namespace memos::kernel {
namespace {

using store::Errc;
using store::Status;

constexpr std::uint32_t kDefaultChatK = 5;
constexpr std::uint32_t kMaxChatK = 100;
constexpr std::uint32_t kDefaultMaxTokens = 128;
constexpr std::size_t kMaxNamedMemories = 1000;

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

void set_activation(wire::Activation::Builder b, const store::Activation& a,
                    const std::string& cube) {
  b.setId(a.id);
  b.setCube(cube);
  b.setModel(a.model);
  b.setModelHash(a.key.model_hash);
  b.setKvType(a.key.kv_type);
  b.setTokens(static_cast<std::uint32_t>(a.tokens.size()));
  b.setBytes(a.size);
  auto sources = b.initSources(static_cast<unsigned>(a.sources.size()));
  for (unsigned i = 0; i < sources.size(); ++i) sources.set(i, a.sources[i]);
  b.setCreatedAtMs(a.created_at_ms);
  b.setLastUsedMs(a.last_used_ms);
  b.setUses(a.uses);
}

Frame no_executor(std::uint64_t id) {
  return error_frame(id, wire::ErrorCode::UNAVAILABLE,
                     "no model executor: set executor.model in memosd.conf to a GGUF file", false);
}

}  // namespace

struct GenerationHandler::ChatArgs {
  std::string cube;
  std::string prompt;
  std::uint32_t k = kDefaultChatK;
  std::vector<std::uint64_t> ids;
  std::uint32_t top = 0;  // prefill: the most read memories
  std::string mode;
  bool activate = false;
  bool no_reuse = false;
  std::uint32_t max_tokens = kDefaultMaxTokens;
  float temperature = 0;
  std::uint32_t top_k = 0;
  float top_p = 0;
  std::uint32_t seed = 0;
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
};

struct GenerationHandler::Block {
  store::Cube cube;
  MemoryBlock memories;
  std::vector<std::int32_t> block_tokens;
  std::vector<std::int32_t> question_tokens;
  std::string format;  // of the prompt: "chat template" or "plain"
};

GenerationHandler::GenerationHandler(Services services, std::shared_ptr<PluginExecutor> executor,
                                     ActivationTier& tier)
    : s_(std::move(services)), executor_(std::move(executor)), tier_(tier) {}

void GenerationHandler::on_lane(std::uint32_t tenant, std::uint64_t id, ChatArgs args, Reply reply,
                                RunOnLane run) {
  s_.executor_lane.post([=, this, args = std::move(args), reply = std::move(reply)](bool stopping) {
    if (stopping)
      return reply(error_frame(id, wire::ErrorCode::UNAVAILABLE, "memosd is stopping", true));
    (this->*run)(tenant, id, args, reply);
  });
}

Frame GenerationHandler::executor_error(std::uint64_t id, const std::string& what,
                                        const std::string& err, bool retryable) {
  return error_frame(id, retryable ? wire::ErrorCode::UNAVAILABLE : wire::ErrorCode::INTERNAL,
                     what + ": " + err + (retryable ? " (the executor restarts; retry)" : ""),
                     retryable);
}

bool GenerationHandler::make_block(std::uint32_t tenant, std::uint64_t id, const ChatArgs& args,
                                   Block* out, const Reply& reply) {
  std::optional<store::ReadTxn> txn;
  if (!open_cube(s_.store, tenant, args.cube, &txn, &out->cube, id, reply)) return false;
  std::vector<store::Item> items;
  if (!args.ids.empty()) {
    for (std::uint64_t item : args.ids) {
      store::Item it;
      Status s = txn->get_item(out->cube.id, item, 0, &it);
      if (s.code == Errc::not_found) s.message = "memory " + std::to_string(item) + " not found";
      if (!s.ok()) {
        reply(status_error(id, s));
        return false;
      }
      items.push_back(std::move(it));
    }
  } else if (args.top > 0) {
    struct Hot {
      store::Item item;
      std::uint64_t hits;
    };
    std::vector<Hot> hot;
    Status failed;
    Status s = txn->for_each_live_item(out->cube.id, [&](const store::Item& it) {
      if (it.state != store::State::active || it.tier != store::Tier::plaintext) return;
      store::AccessStats stats;
      if (Status e = txn->access_stats(out->cube.id, it.id, &stats); !e.ok()) failed = e;
      hot.push_back({it, stats.hits});
    });
    if (s.ok()) s = failed;
    if (!s.ok()) {
      reply(status_error(id, s));
      return false;
    }
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
    q.mode = !args.mode.empty() ? args.mode : out->cube.default_retriever;
    if (!is_search_mode(q.mode)) q.mode = "dense";
    set_search_defaults(s_.config.search, &q);
    q.filter.states = {"active"};
    q.filter.tiers = {"plaintext"};
    q.filter.now_ms = now_ms();
    std::vector<SearchHit> hits;
    bool retryable = false;
    if (std::string err = run_search(s_.indexes, *txn, q, &hits, &retryable); !err.empty()) {
      reply(error_frame(id, retryable ? wire::ErrorCode::UNAVAILABLE : wire::ErrorCode::INTERNAL,
                        "search failed: " + err, retryable));
      return false;
    }
    const std::int64_t now = now_ms();
    for (const auto& hit : hits) {
      store::Item it;
      if (!txn->get_item(hit.cube, hit.id, 0, &it).ok()) continue;  // index a commit ahead
      s_.access.record(hit.cube, hit.id, now);
      items.push_back(std::move(it));
    }
  }
  txn.reset();
  out->memories = build_memory_block(std::move(items));
  bool retryable = false;
  std::string err = executor_->chat_tokens(out->memories.text, args.prompt, &out->block_tokens,
                                           &out->question_tokens, &out->format, &retryable);
  if (args.prompt.empty()) out->question_tokens.clear();  // a prefill: the block alone
  if (!err.empty()) {
    reply(executor_error(id, "tokenizing", err, retryable));
    return false;
  }
  return true;
}

void GenerationHandler::chat(std::uint32_t tenant, std::uint64_t id, wire::Chat::Reader in,
                             Reply reply) {
  if (!executor_) return reply(no_executor(id));
  ChatArgs args;
  args.cube = in.getCube();
  args.prompt = in.getPrompt();
  if (std::string err = check_cube_name(args.cube); !err.empty())
    return reply(bad_request(id, err));
  if (args.prompt.empty()) return reply(bad_request(id, "the prompt is empty"));
  if (CheckFailure f = check_text(args.prompt, s_.config.store); f.failed())
    return reply(check_error(id, f));
  args.k = in.getK() == 0 ? kDefaultChatK : in.getK();
  if (args.k > kMaxChatK)
    return reply(bad_request(id, "k is at most " + std::to_string(kMaxChatK) + " for chat"));
  if (in.getIds().size() > kMaxNamedMemories)
    return reply(bad_request(id, "at most 1000 memories in one block"));
  for (std::uint64_t m : in.getIds()) args.ids.push_back(m);
  args.mode = in.getMode();
  if (!args.mode.empty() && !is_search_mode(args.mode))
    return reply(bad_request(
        id, "mode '" + args.mode.substr(0, 32) + "' is unknown (dense, lexical or hybrid)"));
  args.activate = in.getActivate();
  args.no_reuse = in.getNoReuse();
  args.max_tokens = in.getMaxTokens() == 0 ? kDefaultMaxTokens : in.getMaxTokens();
  if (args.max_tokens > s_.config.executor.max_tokens)
    return reply(bad_request(id, "max tokens is at most " +
                                     std::to_string(s_.config.executor.max_tokens) +
                                     " (executor.max_tokens)"));
  args.temperature = in.getTemperature();
  args.top_p = in.getTopP();
  if (!std::isfinite(args.temperature) || args.temperature < 0 || args.temperature > 10)
    return reply(bad_request(id, "temperature must be between 0 and 10"));
  if (!std::isfinite(args.top_p) || args.top_p < 0 || args.top_p > 1)
    return reply(bad_request(id, "top-p must be between 0 and 1"));
  args.top_k = in.getTopK();
  args.seed = in.getSeed();
  on_lane(tenant, id, std::move(args), std::move(reply), &GenerationHandler::run_chat);
}

void GenerationHandler::run_chat(std::uint32_t tenant, std::uint64_t id, const ChatArgs& args,
                                 const Reply& reply) {
  Block b;
  if (!make_block(tenant, id, args, &b, reply)) return;
  const ExecutorInfo& info = executor_->info();
  std::vector<std::int32_t> tokens = b.block_tokens;
  tokens.insert(tokens.end(), b.question_tokens.begin(), b.question_tokens.end());
  if (tokens.size() >= info.context_tokens) {
    return reply(error_frame(id, wire::ErrorCode::TOO_LARGE,
                             "the memory block and prompt are " + std::to_string(tokens.size()) +
                                 " tokens; the model's context holds " +
                                 std::to_string(info.context_tokens) + " (ask for fewer memories)",
                             false));
  }
  std::optional<FoundState> found;
  if (!args.no_reuse) {
    if (Status s = tier_.find(tenant, info.key, tokens, &found); !s.ok()) {
      spdlog::warn("looking up an activation: {}", s.message);  // then decode it all
    }
  }
  StateRef ref;
  GenerateArgs ga;
  ga.tokens = tokens;
  if (found) {
    ref = tier_.state_ref(found->activation);
    ga.state = &ref;
  }
  ga.max_tokens = std::min<std::uint32_t>(
      args.max_tokens, info.context_tokens - static_cast<std::uint32_t>(tokens.size()));
  ga.temperature = args.temperature;
  ga.top_k = args.top_k;
  ga.top_p = args.top_p;
  ga.seed = args.seed;
  const bool block_covered = found && found->shared >= b.block_tokens.size();
  if (args.activate && !block_covered && b.block_tokens.size() >= tier_.config().chunk_tokens) {
    ga.export_tokens = static_cast<std::uint32_t>(b.block_tokens.size());
  }
  // Decoded without a state (none stored, or refused), the block is still
  // decoded apart from the question, so an answer does not depend on whether
  // its block was restored.
  if (!b.question_tokens.empty())
    ga.split_tokens = static_cast<std::uint32_t>(b.block_tokens.size());
  GenerateResult gr;
  bool retryable = false;
  if (std::string err = executor_->generate(ga, &gr, &retryable); !err.empty()) {
    return reply(executor_error(id, "generation failed", err, retryable));
  }
  std::string status = "none";
  std::uint64_t activation = 0;
  if (found && gr.state_status == "restored") {
    status = "restored";
    activation = found->activation.id;
    tier_.touch(found->activation.cube, found->activation.id);
  } else if (found) {
    // A state keyed for exactly this model and prefix that the executor
    // refused is damaged: forget it (the next activation makes a new one).
    status = gr.state_status;
    spdlog::warn("activation {} was not used ({}); removing it", found->activation.id,
                 gr.state_status);
    tier_.drop_unusable(found->activation);
  }
  if (!gr.exported.empty()) {
    store::Activation stored;
    Status s =
        tier_.store(tenant, b.cube.id, info, b.block_tokens, b.memories.ids, gr.exported, &stored);
    if (s.ok()) {
      activation = stored.id;
      status = status == "restored" ? "restored+stored" : "stored";
    } else {
      spdlog::warn("storing the activation of a memory block: {}", s.message);
      status += "; not stored: " + s.message;
    }
  }
  const double total_ms = ms_since(args.received);
  reply(response(id, [&](wire::Response::Builder r) {
    auto c = r.initChat();
    c.setText(gr.text);
    auto mem = c.initMemories(static_cast<unsigned>(b.memories.ids.size()));
    for (unsigned i = 0; i < mem.size(); ++i) mem.set(i, b.memories.ids[i]);
    c.setPromptTokens(static_cast<std::uint32_t>(tokens.size()));
    c.setBlockTokens(static_cast<std::uint32_t>(b.block_tokens.size()));
    c.setReusedTokens(gr.reused_tokens);
    c.setGeneratedTokens(static_cast<std::uint32_t>(gr.tokens.size()));
    c.setActivationStatus(status);
    c.setActivation(activation);
    c.setRestoreMs(gr.restore_ms);
    c.setPrefillMs(gr.prefill_ms);
    c.setFirstTokenMs(gr.first_token_ms);
    c.setTotalMs(total_ms);
    c.setFinish(gr.finish);
    c.setResident(gr.state_resident);
    c.setFormat(b.format);
  }));
}

void GenerationHandler::prefill(std::uint32_t tenant, std::uint64_t id, wire::KvPrefill::Reader in,
                                Reply reply) {
  if (!executor_) return reply(no_executor(id));
  ChatArgs args;
  args.cube = in.getCube();
  if (std::string err = check_cube_name(args.cube); !err.empty())
    return reply(bad_request(id, err));
  if (in.getIds().size() > kMaxNamedMemories)
    return reply(bad_request(id, "at most 1000 memories in one block"));
  for (std::uint64_t m : in.getIds()) args.ids.push_back(m);
  args.top = in.getTop();
  if (args.ids.empty() == (args.top == 0))
    return reply(bad_request(id, "name the memories (ids) or how many of the most read (top)"));
  if (args.top > kMaxNamedMemories) return reply(bad_request(id, "top is at most 1000"));
  on_lane(tenant, id, std::move(args), std::move(reply), &GenerationHandler::run_prefill);
}

void GenerationHandler::run_prefill(std::uint32_t tenant, std::uint64_t id, const ChatArgs& args,
                                    const Reply& reply) {
  Block b;
  if (!make_block(tenant, id, args, &b, reply)) return;
  const ExecutorInfo& info = executor_->info();
  if (b.block_tokens.size() > info.context_tokens) {
    return reply(error_frame(id, wire::ErrorCode::TOO_LARGE,
                             "the memory block is " + std::to_string(b.block_tokens.size()) +
                                 " tokens; the model's context holds " +
                                 std::to_string(info.context_tokens),
                             false));
  }
  auto answer = [&](const store::Activation& a, double prefill_ms) {
    reply(response(id, [&](wire::Response::Builder r) {
      auto out = r.initActivation();
      set_activation(out, a, b.cube.name);
      out.setPrefillMs(prefill_ms);
    }));
  };
  std::optional<FoundState> found;
  if (Status s = tier_.find(tenant, info.key, b.block_tokens, &found); !s.ok())
    spdlog::warn("looking up an activation: {}", s.message);
  if (found && found->activation.tokens == b.block_tokens) return answer(found->activation, 0);
  if (b.block_tokens.size() < tier_.config().chunk_tokens) {
    return reply(
        error_frame(id, wire::ErrorCode::CONFLICT,
                    "the memory block has " + std::to_string(b.block_tokens.size()) +
                        " tokens, less than one chunk (activation.chunk_tokens): not worth keeping",
                    false));
  }
  std::string state;
  double prefill_ms = 0;
  bool retryable = false;
  if (std::string err = executor_->prefill(b.block_tokens, &state, &prefill_ms, &retryable);
      !err.empty()) {
    return reply(executor_error(id, "prefill failed", err, retryable));
  }
  store::Activation stored;
  Status s = tier_.store(tenant, b.cube.id, info, b.block_tokens, b.memories.ids, state, &stored);
  if (!s.ok()) return reply(status_error(id, s));
  answer(stored, prefill_ms);
}

void GenerationHandler::list(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                             Reply reply) {
  if (std::string err = check_cube_name(cube_name); !err.empty())
    return reply(bad_request(id, err));
  s_.run_on_worker([this, tenant, id, cube_name = std::move(cube_name), reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
    std::vector<store::Activation> all;
    Status s =
        txn->list_activations(cube.id, [&](const store::Activation& a) { all.push_back(a); });
    if (!s.ok()) return reply(status_error(id, s));
    reply(response(id, [&](wire::Response::Builder r) {
      auto list = r.initActivations(static_cast<unsigned>(all.size()));
      for (unsigned i = 0; i < all.size(); ++i) set_activation(list[i], all[i], cube.name);
    }));
  });
}

void GenerationHandler::remove(std::uint32_t tenant, std::uint64_t id, std::string cube_name,
                               std::uint64_t item, Reply reply) {
  if (std::string err = check_cube_name(cube_name); !err.empty())
    return reply(bad_request(id, err));
  // remove() waits for its commit: a worker, not the loop.
  s_.run_on_worker(
      [this, tenant, id, item, cube_name = std::move(cube_name), reply = std::move(reply)] {
        std::optional<store::ReadTxn> txn;
        store::Cube cube;
        if (!open_cube(s_.store, tenant, cube_name, &txn, &cube, id, reply)) return;
        txn.reset();
        store::Activation gone;
        Status s = tier_.remove(cube.id, item, &gone);
        if (s.code == Errc::not_found) s.message = "no activation item " + std::to_string(item);
        if (!s.ok()) return reply(status_error(id, s));
        reply(response(id, [&](wire::Response::Builder r) {
          set_activation(r.initActivation(), gone, cube.name);
        }));
      });
}

void GenerationHandler::stats(std::uint32_t tenant, std::uint64_t id, Reply reply) {
  s_.run_on_worker([this, tenant, id, reply = std::move(reply)] {
    std::optional<store::ReadTxn> txn;
    store::ActivationUsage usage;
    Status s = s_.store.begin_read(&txn);
    if (s.ok()) s = txn->activation_usage(tenant, &usage);
    if (!s.ok()) return reply(status_error(id, s));
    txn.reset();
    ExecutorStatus es;
    if (executor_) {
      bool retryable = false;
      if (std::string err = executor_->status(&es, &retryable); !err.empty())
        spdlog::warn("executor status: {}", err);  // the stored side still answers
    }
    reply(response(id, [&](wire::Response::Builder r) {
      auto k = r.initKvStats();
      if (executor_) {
        const ExecutorInfo& info = executor_->info();
        k.setModel(info.model);
        k.setModelHash(info.key.model_hash);
        k.setKvType(info.key.kv_type);
        k.setContextTokens(info.context_tokens);
      }
      k.setItems(usage.count);
      k.setBytes(usage.bytes);
      k.setTenantMaxBytes(tier_.config().tenant_max_mb << 20);
      k.setResidentStates(es.resident_states);
      k.setResidentBytes(es.resident_bytes);
      k.setResidentBudgetBytes(es.resident_budget_bytes);
      k.setResidentHits(es.resident_hits);
      k.setResidentMisses(es.resident_misses);
      k.setRejectedStates(es.rejected_states);
      k.setChunkTokens(tier_.config().chunk_tokens);
    }));
  });
}

}  // namespace memos::kernel
