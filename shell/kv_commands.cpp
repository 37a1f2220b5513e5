#include "shell/kv_commands.h"

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "policies/policy.h"
#include "shell/search_output.h"
#include "shell/time_args.h"
#include "shell/vocabulary_options.h"

namespace memos::shell {
namespace {

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

// "CPU (...)" or "CUDA0 (NVIDIA H200), 24 of 24 layers; 130.1 of 139.8 GiB
// free; 1.2 GiB page-locked of 1.2 GiB".
std::string describe_device(const memos::KvStats& k) {
  char line[512];
  if (k.device.empty() || k.device == "CPU") {
    std::snprintf(line, sizeof line, "CPU%s%s%s", k.device_description.empty() ? "" : " (",
                  k.device_description.c_str(), k.device_description.empty() ? "" : ")");
    return line;
  }
  std::snprintf(line, sizeof line,
                "%s (%s), %u of %u layers; %.1f of %.1f GiB free; %.1f MB page-locked of %.0f MB",
                k.device.c_str(), k.device_description.c_str(), k.gpu_layers, k.layers,
                k.device_free_bytes / 1073741824.0, k.device_total_bytes / 1073741824.0,
                k.pinned_bytes / 1048576.0, k.pinned_budget_bytes / 1048576.0);
  return line;
}

void print_activation(const memos::Activation& a) {
  std::printf("%s  %6u tokens  %8.1f MB  %s  used %llu×, last %s  from %zu memories\n",
              memos::format_id(a.id).c_str(), a.tokens, a.bytes / 1048576.0, a.kv_type.c_str(),
              static_cast<unsigned long long>(a.uses), format_time(a.last_used_ms).c_str(),
              a.sources.size());
}

// What a chat's stop reason means, for the line on standard error.
const char* finish_note(const std::string& finish) {
  if (finish == "length") return "stopped at the token limit (--max-tokens, or the context's end)";
  if (finish == "eog") return "the model ended its answer";
  if (finish == "prompt") return "no room left in the context to generate";
  return "stopped";
}

// Shows a streamed chat as it comes: prefill progress on standard error
// while a terminal shows it, then the answer's text on standard output,
// each piece as soon as it arrives. Runs on the SDK's reader thread, one
// piece at a time.
class ChatStream {
 public:
  ChatStream() : progress_(::isatty(STDERR_FILENO) != 0) {}
  void operator()(const memos::ChatPiece& piece) {
    if (piece.prefill_total > 0) {
      if (progress_) {
        std::fprintf(stderr, "\rprefill %u/%u tokens", piece.prefill_done, piece.prefill_total);
        std::fflush(stderr);
        progress_shown_ = true;
      }
      return;
    }
    clear_progress();
    std::fwrite(piece.text.data(), 1, piece.text.size(), stdout);
    std::fflush(stdout);
    printed_ += piece.text.size();
  }
  // Before the end: the progress line gone, and the answer's newline.
  void finish(bool newline = true) {
    clear_progress();
    if (!newline) return;
    std::printf("\n");
    std::fflush(stdout);
  }
  std::size_t printed() const { return printed_; }

 private:
  void clear_progress() {
    if (!progress_shown_) return;
    std::fprintf(stderr, "\r\033[K");
    progress_shown_ = false;
  }
  bool progress_;
  bool progress_shown_ = false;
  std::size_t printed_ = 0;
};

Json chat_json(const memos::ChatReply& c) {
  Json j;
  j["text"] = c.text;
  j["memories"] = ids_json(c.memories);
  j["prompt_tokens"] = c.prompt_tokens;
  j["block_tokens"] = c.block_tokens;
  j["reused_tokens"] = c.reused_tokens;
  j["cached_tokens"] = c.cached_tokens;
  j["generated_tokens"] = c.generated_tokens;
  j["activation_status"] = memos::to_string(c.activation_status);
  if (c.activation) j["activation"] = memos::format_id(c.activation);
  j["resident"] = c.resident;
  j["restore_ms"] = json_number(c.restore_ms);
  j["prefill_ms"] = json_number(c.prefill_ms);
  j["saved_ms"] = json_number(c.saved_ms);
  j["first_token_ms"] = json_number(c.first_token_ms);
  j["total_ms"] = json_number(c.total_ms);
  j["finish"] = c.finish;
  j["format"] = c.format;
  j["adapters"] = c.adapters;
  if (!c.modules.empty()) j["modules"] = modules_json(c.modules);
  if (c.router) j["router"] = router_json(*c.router);
  return j;
}

// The line on standard error after the answer: the memories used, what
// the activation tier did and saved, the timings and why it stopped.
void print_chat_figures(const memos::ChatReply& c) {
  std::string memories;
  for (std::uint64_t id : c.memories)
    memories += (memories.empty() ? "" : " ") + memos::format_id(id);
  std::string activation = memos::to_string(c.activation_status);
  if (c.activation) activation += " " + memos::format_id(c.activation);
  std::string saved;
  if (c.activation_status.restored && c.saved_ms != 0) {
    char buf[96];
    std::snprintf(
        buf, sizeof(buf),
        c.saved_ms > 0 ? ", saved about %.0f ms of prefill" : ", cost %.0f ms more than a prefill",
        c.saved_ms > 0 ? c.saved_ms : -c.saved_ms);
    saved = buf;
  }
  std::string adapters;
  for (const auto& a : c.adapters) adapters += (adapters.empty() ? "; adapters " : " ") + a;
  std::fprintf(stderr,
               "-- memories %s (%zu)%s; %u prompt tokens, %u reused (%u cached); activation %s%s; "
               "first token %.1f ms (restore %.1f, prefill %.1f); %u tokens: %s\n",
               memories.empty() ? "none" : memories.c_str(), c.memories.size(), adapters.c_str(),
               c.prompt_tokens, c.reused_tokens, c.cached_tokens, activation.c_str(), saved.c_str(),
               c.first_token_ms, c.restore_ms, c.prefill_ms, c.generated_tokens,
               finish_note(c.finish));
  if (!c.modules.empty()) std::fprintf(stderr, "-- route %s\n", modules_line(c.modules).c_str());
  if (c.router) std::fprintf(stderr, "-- router %s\n", router_line(*c.router).c_str());
}

int chat(const GenerationArgs& a, memos::Client& client, const Output& out) {
  if (out.json()) {
    auto r = client.chat(a.cube, a.prompt, a.chat);
    if (!r) return out.refused(r.error());
    return out.emit(chat_json(r.value()));
  }
  ChatStream stream;
  auto r = client.chat(a.cube, a.prompt, a.chat, std::ref(stream));
  if (!r) {
    // Pieces already shown stay; the error follows on its own line.
    stream.finish(stream.printed() > 0);
    return out.refused(r.error());
  }
  stream.finish();
  print_chat_figures(r.value());  // on stderr: stdout holds only the answer
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
      j["prompts_held"] = k.prompts_held;
      j["prompt_hits"] = k.prompt_hits;
      j["prompt_hit_tokens"] = k.prompt_hit_tokens;
      j["rejected_states"] = k.rejected_states;
      j["adapters_loaded"] = k.adapters_loaded;
      j["adapter_bytes"] = k.adapter_bytes;
      j["adapter_budget_bytes"] = k.adapter_budget_bytes;
      j["adapter_loads"] = k.adapter_loads;
      j["device"] = k.device;
      j["device_description"] = k.device_description;
      j["gpu_layers"] = k.gpu_layers;
      j["layers"] = k.layers;
      j["device_free_bytes"] = k.device_free_bytes;
      j["device_total_bytes"] = k.device_total_bytes;
      j["resident_pinned_states"] = k.resident_pinned_states;
      j["resident_pinned_bytes"] = k.resident_pinned_bytes;
      j["pinned_bytes"] = k.pinned_bytes;
      j["pinned_budget_bytes"] = k.pinned_budget_bytes;
      j["device_budget_bytes"] = k.device_budget_bytes;
      j["device_states"] = k.device_states;
      j["device_state_bytes"] = k.device_state_bytes;
      j["device_state_hits"] = k.device_state_hits;
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
    if (!k.model.empty()) {
      std::printf("device     %s\n", describe_device(k).c_str());
    }
    std::printf("resident   %u states, %.1f MB of %.0f MB; %llu hits, %llu misses\n",
                k.resident_states, k.resident_bytes / 1048576.0,
                k.resident_budget_bytes / 1048576.0,
                static_cast<unsigned long long>(k.resident_hits),
                static_cast<unsigned long long>(k.resident_misses));
    if (k.resident_states != 0) {
      std::printf("           %u in page-locked memory (%.1f MB), %u in ordinary memory\n",
                  k.resident_pinned_states, k.resident_pinned_bytes / 1048576.0,
                  k.resident_states - k.resident_pinned_states);
    }
    if (k.device_budget_bytes != 0) {
      std::printf(
          "on device  %u states in the KV cache itself, %.1f MB of %.0f MB; %llu restores "
          "shared their cells\n",
          k.device_states, k.device_state_bytes / 1048576.0, k.device_budget_bytes / 1048576.0,
          static_cast<unsigned long long>(k.device_state_hits));
    }
    std::printf(
        "prompts    %u recent ones kept by the executor; %llu calls started from one, "
        "%llu tokens not decoded\n",
        k.prompts_held, static_cast<unsigned long long>(k.prompt_hits),
        static_cast<unsigned long long>(k.prompt_hit_tokens));
    std::printf("adapters   %u loaded, %.1f MB of %.0f MB; %llu loads\n", k.adapters_loaded,
                k.adapter_bytes / 1048576.0, k.adapter_budget_bytes / 1048576.0,
                static_cast<unsigned long long>(k.adapter_loads));
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
  auto* adapter =
      chat->add_option("--adapter", a.adapters,
                       "answer with this LoRA adapter of the cube, at its scale or SCALE "
                       "(repeatable; default: the policy's parametric.adapters)")
          ->type_name("NAME[:SCALE]");
  chat->add_flag("--no-adapters", a.chat.no_adapters,
                 "the base model, whatever the policy's parametric.adapters say")
      ->excludes(adapter);
  add_route_options(chat, a.routing);

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
  a.chat.routing = convert_route_options(a.routing,
                                         !a.mode.empty()  ? "--mode"
                                         : !a.ids.empty() ? "--ids"
                                                          : "",
                                         true);
  for (const auto& text : a.adapters) {
    std::string why;
    auto choice = policies::parse_adapter_choice(text, &why);
    if (!choice) throw UsageError{"--adapter: " + why};
    a.chat.adapters.push_back({choice->name, choice->scale});
  }
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
