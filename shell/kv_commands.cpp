#include "shell/kv_commands.h"

#include <cstdio>

#include "shell/time_args.h"
#include "shell/vocabulary_options.h"

namespace memos::shell {
namespace {

void ids_json(JsonWriter& j, const char* key, const std::vector<std::uint64_t>& ids) {
  j.key(key).begin_array();
  for (std::uint64_t id : ids) j.value(memos::format_id(id));
  j.end_array();
}

void activation_json(JsonWriter& j, const memos::Activation& a) {
  j.begin_object();
  j.key("id").value(memos::format_id(a.id));
  j.key("cube").value(a.cube);
  j.key("model").value(a.model);
  j.key("model_hash").value(a.model_hash);
  j.key("kv_type").value(a.kv_type);
  j.key("tokens").value(a.tokens);
  j.key("bytes").value(a.bytes);
  ids_json(j, "sources", a.sources);
  j.key("created_at_ms").value(a.created_at_ms);
  j.key("last_used_ms").value(a.last_used_ms);
  j.key("uses").value(a.uses);
  if (a.prefill_ms > 0) j.key("prefill_ms").value(a.prefill_ms);
  j.end_object();
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
    JsonWriter j;
    j.begin_object();
    j.key("text").value(c.text);
    ids_json(j, "memories", c.memories);
    j.key("prompt_tokens").value(c.prompt_tokens);
    j.key("block_tokens").value(c.block_tokens);
    j.key("reused_tokens").value(c.reused_tokens);
    j.key("generated_tokens").value(c.generated_tokens);
    j.key("activation_status").value(status);
    if (c.activation) j.key("activation").value(memos::format_id(c.activation));
    j.key("resident").value(c.resident);
    j.key("restore_ms").value(c.restore_ms);
    j.key("prefill_ms").value(c.prefill_ms);
    j.key("first_token_ms").value(c.first_token_ms);
    j.key("total_ms").value(c.total_ms);
    j.key("finish").value(c.finish);
    j.key("format").value(c.format);
    j.end_object();
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
      JsonWriter j;
      j.begin_object();
      j.key("model").value(k.model);
      j.key("model_hash").value(k.model_hash);
      j.key("kv_type").value(k.kv_type);
      j.key("context_tokens").value(k.context_tokens);
      j.key("chunk_tokens").value(k.chunk_tokens);
      j.key("items").value(k.items);
      j.key("bytes").value(k.bytes);
      j.key("tenant_max_bytes").value(k.tenant_max_bytes);
      j.key("resident_states").value(k.resident_states);
      j.key("resident_bytes").value(k.resident_bytes);
      j.key("resident_budget_bytes").value(k.resident_budget_bytes);
      j.key("resident_hits").value(k.resident_hits);
      j.key("resident_misses").value(k.resident_misses);
      j.key("rejected_states").value(k.rejected_states);
      j.end_object();
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
      JsonWriter j;
      j.begin_array();
      for (const auto& act : r.value()) activation_json(j, act);
      j.end_array();
      return out.emit(j);
    }
    if (r->empty()) std::printf("no activation items\n");
    for (const auto& act : r.value()) print_activation(act);
    return 0;
  }
  auto r = sub("rm") ? client.kv_remove(a.cube, a.item_id)
                     : client.kv_prefill(a.cube, a.chat.ids, a.top);
  if (!r) return out.refused(r.error());
  if (out.json()) {
    JsonWriter j;
    activation_json(j, r.value());
    return out.emit(j);
  }
  if (sub("prefill") && r->prefill_ms == 0) std::printf("already stored: ");
  print_activation(r.value());
  if (r->prefill_ms > 0) std::printf("prefilled in %.1f ms\n", r->prefill_ms);
  return 0;
}

}  // namespace

void add_generation_commands(CLI::App& app, GenerationArgs& a) {
  auto* chat = app.add_subcommand("chat", "answer a prompt with the model, memories ahead of it");
  chat->add_option("CUBE", a.cube)->required();
  chat->add_option("PROMPT", a.prompt)->required();
  chat->add_option("-k", a.chat.k, "memories to retrieve (default 5)")->check(CLI::Range(1u, 100u));
  chat->add_option("--ids", a.ids, "use these memories instead of searching (repeatable)")
      ->delimiter(',');
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
  prefill->add_option("CUBE", a.cube)->required();
  auto* ids = prefill->add_option("--ids", a.ids, "these memories (repeatable)")->delimiter(',');
  prefill->add_option("--top", a.top, "the N most read memories")
      ->check(CLI::Range(1u, 1000u))
      ->excludes(ids);
  kv->add_subcommand("ls", "list a cube's activation items")
      ->add_option("CUBE", a.cube)
      ->required();
  auto* rm = kv->add_subcommand("rm", "remove an activation item");
  rm->add_option("CUBE", a.cube)->required();
  rm->add_option("ID", a.id)->required();
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
