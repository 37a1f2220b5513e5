#include "shell/kv_commands.h"

#include <cstdio>

#include "shell/time_args.h"
#include "shell/vocabulary_options.h"

namespace memos::shell {
namespace {

Json ids_json(const std::vector<std::uint64_t>& ids) {
  Json j = Json::array();
  for (std::uint64_t id : ids) j.push_back(memos::format_id(id));
  return j;
}

Json activation_json(const memos::Activation& a) {
  Json j;
  j["id"] = memos::format_id(a.id);
  j["cube"] = a.cube;
  j["model"] = a.model;
  j["model_hash"] = a.model_hash;
  j["kv_type"] = a.kv_type;
  j["tokens"] = a.tokens;
  j["bytes"] = a.bytes;
  j["sources"] = ids_json(a.sources);
  j["created_at_ms"] = a.created_at_ms;
  j["last_used_ms"] = a.last_used_ms;
  j["uses"] = a.uses;
  if (a.prefill_ms > 0) j["prefill_ms"] = json_number(a.prefill_ms);
  return j;
}

void print_activation(const memos::Activation& a) {
  std::printf("%s  %6u tokens  %8.1f MB  %s  used %llu×, last %s  from %zu memories\n",
              memos::format_id(a.id).c_str(), a.tokens, a.bytes / 1048576.0, a.kv_type.c_str(),
              static_cast<unsigned long long>(a.uses), format_time(a.last_used_ms).c_str(),
              a.sources.size());
}

int chat(const GenerationArgs& a, memos::Client& client, const Output& out) {
  auto r = client.chat(a.cube, a.prompt, a.chat);
  if (!r) return out.refused(r.error());
  const auto& c = r.value();
  // As memosd words it: the outcome, then why storing failed if it did.
  std::string status = memos::to_string(c.activation_status);
  if (out.json()) {
    Json j;
    j["text"] = c.text;
    j["memories"] = ids_json(c.memories);
    j["prompt_tokens"] = c.prompt_tokens;
    j["block_tokens"] = c.block_tokens;
    j["reused_tokens"] = c.reused_tokens;
    j["generated_tokens"] = c.generated_tokens;
    j["activation_status"] = status;
    if (c.activation) j["activation"] = memos::format_id(c.activation);
    j["resident"] = c.resident;
    j["restore_ms"] = json_number(c.restore_ms);
    j["prefill_ms"] = json_number(c.prefill_ms);
    j["first_token_ms"] = json_number(c.first_token_ms);
    j["total_ms"] = json_number(c.total_ms);
    j["finish"] = c.finish;
    j["format"] = c.format;
    return out.emit(j);
  }
  std::printf("%s\n", c.text.c_str());
  std::fflush(stdout);  // the answer first, then its figures
  // The figures go to stderr: stdout holds only the answer.
  std::fprintf(stderr,
               "-- %zu memories, %u prompt tokens, %u reused; activation: %s%s%s; "
               "first token %.1f ms (restore %.1f, prefill %.1f); %u tokens, %s\n",
               c.memories.size(), c.prompt_tokens, c.reused_tokens, status.c_str(),
               c.activation ? " " : "", c.activation ? memos::format_id(c.activation).c_str() : "",
               c.first_token_ms, c.restore_ms, c.prefill_ms, c.generated_tokens, c.finish.c_str());
  return 0;
}

int kv(CLI::App& kv_cmd, const GenerationArgs& a, memos::Client& client, const Output& out) {
  auto sub = [&](const char* name) { return kv_cmd.got_subcommand(name); };
  if (sub("stats")) {
    auto r = client.kv_stats();
    if (!r) return out.refused(r.error());
    const auto& k = r.value();
    if (out.json()) {
      Json j;
      j["model"] = k.model;
      j["model_hash"] = k.model_hash;
      j["kv_type"] = k.kv_type;
      j["context_tokens"] = k.context_tokens;
      j["chunk_tokens"] = k.chunk_tokens;
      j["items"] = k.items;
      j["bytes"] = k.bytes;
      j["tenant_max_bytes"] = k.tenant_max_bytes;
      j["resident_states"] = k.resident_states;
      j["resident_bytes"] = k.resident_bytes;
      j["resident_budget_bytes"] = k.resident_budget_bytes;
      j["resident_hits"] = k.resident_hits;
      j["resident_misses"] = k.resident_misses;
      j["rejected_states"] = k.rejected_states;
      return out.emit(j);
    }
    if (k.model.empty()) {
      std::printf("executor   none (executor.model is not set)\n");
    } else {
      std::printf("model      %s (%s), KV %s, context %u tokens\n", k.model.c_str(),
                  k.model_hash.substr(0, 12).c_str(), k.kv_type.c_str(), k.context_tokens);
    }
    std::printf("stored     %llu items, %.1f MB of %.0f MB (this tenant)\n",
                static_cast<unsigned long long>(k.items), k.bytes / 1048576.0,
                k.tenant_max_bytes / 1048576.0);
    std::printf("resident   %u states, %.1f MB of %.0f MB; %llu hits, %llu misses\n",
                k.resident_states, k.resident_bytes / 1048576.0,
                k.resident_budget_bytes / 1048576.0,
                static_cast<unsigned long long>(k.resident_hits),
                static_cast<unsigned long long>(k.resident_misses));
    std::printf("rejected   %llu states (recomputed)\n",
                static_cast<unsigned long long>(k.rejected_states));
    std::printf("chunks     %u tokens\n", k.chunk_tokens);
    return 0;
  }
  if (sub("ls")) {
    auto r = client.kv_list(a.cube);
    if (!r) return out.refused(r.error());
    if (out.json()) {
      Json j = Json::array();
      for (const auto& act : r.value()) j.push_back(activation_json(act));
      return out.emit(j);
    }
    if (r->empty()) std::printf("no activation items\n");
    for (const auto& act : r.value()) print_activation(act);
    return 0;
  }
  auto r = sub("rm") ? client.kv_remove(a.cube, a.item_id)
                     : client.kv_prefill(a.cube, a.chat.ids, a.top);
  if (!r) return out.refused(r.error());
  if (out.json()) return out.emit(activation_json(r.value()));
  if (sub("prefill") && r->prefill_ms == 0) std::printf("already stored: ");
  print_activation(r.value());
  if (r->prefill_ms > 0) std::printf("prefilled in %.1f ms\n", r->prefill_ms);
  return 0;
}

}  // namespace

void add_generation_commands(CLI::App& app, GenerationArgs& a) {
  auto* chat = app.add_subcommand("chat", "answer a prompt with the model, memories ahead of it");
  chat->add_option("CUBE", a.cube, "the cube")->required();
  chat->add_option("PROMPT", a.prompt, "the question, one argument: quote it")->required();
  chat->add_option("-k", a.chat.k, "memories to retrieve (default 5)")->check(CLI::Range(1u, 100u));
  chat->add_option("--ids", a.ids, "use these memories instead of searching (repeatable)")
      ->delimiter(',')
      ->type_name("ID[,ID...]");
  chat->add_option("--mode", a.mode, "search mode (default: the cube's)")
      ->check(one_of(parse_search_mode, kSearchModes));
  chat->add_flag("--activate", a.chat.activate,
                 "store the memory block's KV state, so the next chat over it skips prefill");
  chat->add_flag("--no-reuse", a.chat.no_reuse, "prefill the block even if a state is stored");
  chat->add_option("--max-tokens", a.chat.max_tokens, "tokens to generate (default 128)")
      ->check(CLI::Range(1u, 1u << 20));
  chat->add_option("--temperature", a.chat.temperature, "0 (default): greedy")
      ->check(CLI::Range(0.0f, 10.0f));
  chat->add_option("--top-k", a.chat.top_k, "sample from the k likeliest tokens");
  chat->add_option("--top-p", a.chat.top_p, "sample from the smallest set with this mass")
      ->check(CLI::Range(0.0f, 1.0f));
  chat->add_option("--seed", a.chat.seed, "of the sampler");

  auto* kv = app.add_subcommand("kv", "the activation tier: stored KV states of memory blocks");
  kv->require_subcommand(1);
  auto* prefill = kv->add_subcommand("prefill", "prefill a memory block and store its state");
  prefill->add_option("CUBE", a.cube, "the cube")->required();
  auto* ids = prefill->add_option("--ids", a.ids, "these memories (repeatable)")
                  ->delimiter(',')
                  ->type_name("ID[,ID...]");
  prefill->add_option("--top", a.top, "the N most read memories")
      ->check(CLI::Range(1u, 1000u))
      ->excludes(ids);
  kv->add_subcommand("ls", "list a cube's activation items")
      ->add_option("CUBE", a.cube, "the cube")
      ->required();
  auto* rm = kv->add_subcommand("rm", "remove an activation item");
  rm->add_option("CUBE", a.cube, "the cube")->required();
  rm->add_option("ID", a.id, "the activation item's id (memctl kv ls)")->required();
  kv->add_subcommand("stats", "the tier's use: stored, resident, the model");
}

void convert_generation_args(CLI::App& app, GenerationArgs& a) {
  if (CLI::App* kv = app.get_subcommand("kv");
      kv->parsed() && kv->got_subcommand("prefill") && a.ids.empty() && a.top == 0) {
    throw UsageError{"kv prefill wants --ids or --top"};
  }
  auto id_of = [](const std::string& text) {
    auto id = memos::parse_id(text);
    if (!id) throw UsageError{"'" + text + "' is not an item id (13 characters of base32)"};
    return *id;
  };
  for (const auto& text : a.ids) a.chat.ids.push_back(id_of(text));
  a.chat.mode = optional_value_of(parse_search_mode, a.mode);
  if (!a.id.empty()) a.item_id = id_of(a.id);
}

std::optional<int> run_generation_commands(CLI::App& app, const GenerationArgs& a,
                                           memos::Client& client, const Output& out) {
  if (app.got_subcommand("chat")) return chat(a, client, out);
  if (CLI::App* kv_cmd = app.get_subcommand("kv"); kv_cmd->parsed()) {
    return kv(*kv_cmd, a, client, out);
  }
  return std::nullopt;
}

}  // namespace memos::shell
