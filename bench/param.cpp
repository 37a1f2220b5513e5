// param: the parametric tier's costs (issue 18's "switch" and "distill" phases), on
// memos-mkmodel models (random weights: speed does not depend on what they
// say) and random LoRA adapters of rank 8 on every attention and
// feed-forward matrix (memos-mkmodel --lora-for).
//
//   bench-param [--preset small,0.5b] [--threads 2] [--runs 20] [--tokens 512]
//
// One JSON line per preset:
//   {"bench":"param","phase":"switch","preset","adapter_mb","load_ms",
//    "switch_us","set_only_us","ttft_base_ms","ttft_adapter_ms", ...}
// load_ms: llama_adapter_lora_init of one adapter (what an executor's miss
// costs besides reading and hashing the file). switch_us: with two adapters
// loaded, setting the other one and decoding one token, less decoding one
// token with the set unchanged (the baseline): what a chat pays to switch
// between loaded adapters. ttft_*: a memosd chat over a block of --tokens
// tokens, decoded whole (no stored state, no recent prompt), without and
// with an adapter: what an adapter adds to a prefill.
//
// And one JSON line per preset for distillation:
//   {"bench":"param","phase":"distill","preset","memories","tokens","seconds",
//    "model_type","rank","steps","ppl_base","ppl_adapter","ppl_ratio",
//    "control_ppl_ratio","next_token_acc_base","next_token_acc_adapter"}
// A memosd distils --memories synthetic personal facts (memctl param
// distill, through the job path) on the preset's model with weights of
// --distill-type (f32; f16 and q8_0 are trained through the executor's
// F32 copy, and scored on the model as it is);
// the adapter is exported and scored here, in llama.cpp directly: the
// perplexity and next-token accuracy of the facts with and without it,
// and the perplexity of unrelated control text (the cost to everything
// else). The model's weights are random, so the figures say how well the
// job fits what it was given, not what a trained model would recall.
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/bench_util.h"

using namespace memos::bench;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string memosd;
  std::vector<std::string> presets = {"small", "0.5b"};
  unsigned threads = 2;
  unsigned runs = 20;
  std::size_t tokens = 512;
  unsigned memories = 24;            // distill: facts
  unsigned distill_steps = 40;       // distill: training steps
  std::string distill_type = "f32";  // distill: the model's weight type
  std::vector<std::string> phases = {"switch", "distill"};
};

constexpr unsigned kRank = 8;

Options parse(int argc, char** argv) {
  Options o;
  read_options(argc, argv,
               "bench-param [--preset small,0.5b] [--threads 2] [--runs 20] [--tokens 512]\n"
               "            [--phase switch,distill] [--memories 24] [--distill-steps 40]\n"
               "            [--distill-type f32|f16|q8_0]\n",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   o.memosd = value;
                 } else if (flag == "--threads") {
                   o.threads = static_cast<unsigned>(parse_positive(flag, value));
                 } else if (flag == "--runs") {
                   o.runs = static_cast<unsigned>(parse_positive(flag, value));
                 } else if (flag == "--tokens") {
                   o.tokens = parse_positive(flag, value);
                   if (o.tokens > 3000) throw UsageError("--tokens: at most 3000");
                 } else if (flag == "--memories") {
                   o.memories = static_cast<unsigned>(parse_positive(flag, value));
                 } else if (flag == "--distill-steps") {
                   o.distill_steps = static_cast<unsigned>(parse_positive(flag, value));
                 } else if (flag == "--distill-type") {
                   if (value != "f32" && value != "f16" && value != "q8_0")
                     throw UsageError("--distill-type: f32, f16 or q8_0");
                   o.distill_type = value;
                 } else if (flag == "--phase") {
                   o.phases.clear();
                   std::stringstream list{std::string(value)};
                   for (std::string one; std::getline(list, one, ',');) {
                     if (one != "switch" && one != "distill")
                       throw UsageError("--phase: switch or distill");
                     o.phases.push_back(one);
                   }
                 } else if (flag == "--preset") {
                   o.presets.clear();
                   std::stringstream list{std::string(value)};
                   for (std::string one; std::getline(list, one, ',');) {
                     if (one != "small" && one != "0.5b" && one != "tiny")
                       throw UsageError("--preset: tiny, small or 0.5b");
                     o.presets.push_back(one);
                   }
                 } else {
                   return false;
                 }
                 return true;
               });
  if (o.memosd.empty()) throw UsageError("--memosd is required (scripts/bench passes it)");
  return o;
}

using ModelPtr = std::unique_ptr<llama_model, decltype(&llama_model_free)>;
using ContextPtr = std::unique_ptr<llama_context, decltype(&llama_free)>;
using AdapterPtr = std::unique_ptr<llama_adapter_lora, decltype(&llama_adapter_lora_free)>;

struct InProcess {
  double load_ms = 0, switch_us = 0, set_only_us = 0, same_us = 0;
};

// Loads and switches adapters the way the executor does, in this process.
InProcess in_process(const std::string& model_path, const std::string& a, const std::string& b,
                     const Options& o) {
  ModelPtr model(llama_model_load_from_file(model_path.c_str(), llama_model_default_params()),
                 &llama_model_free);
  if (!model) throw std::runtime_error("cannot load " + model_path);
  InProcess r;
  std::vector<double> loads;
  for (unsigned i = 0; i < std::max(3u, o.runs / 4); ++i) {
    auto t = Clock::now();
    AdapterPtr one(llama_adapter_lora_init(model.get(), a.c_str()), &llama_adapter_lora_free);
    loads.push_back(seconds_since(t) * 1000);
    if (!one) throw std::runtime_error("llama.cpp refused " + a);
  }
  r.load_ms = summarize(loads).p50;
  AdapterPtr first(llama_adapter_lora_init(model.get(), a.c_str()), &llama_adapter_lora_free);
  AdapterPtr second(llama_adapter_lora_init(model.get(), b.c_str()), &llama_adapter_lora_free);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 1024;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = static_cast<int32_t>(o.threads);
  ContextPtr ctx(llama_init_from_model(model.get(), cp), &llama_free);
  if (!ctx) throw std::runtime_error("llama_init_from_model failed");
  llama_memory_t mem = llama_get_memory(ctx.get());
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  llama_token token = llama_vocab_bos(vocab) >= 0 ? llama_vocab_bos(vocab) : 0;
  float scale = 1;
  auto decode_one = [&] {
    llama_memory_seq_rm(mem, 0, -1, -1);
    llama_batch batch = llama_batch_get_one(&token, 1);
    if (llama_decode(ctx.get(), batch) != 0) throw std::runtime_error("llama_decode failed");
  };
  llama_adapter_lora* current = first.get();
  llama_set_adapters_lora(ctx.get(), &current, 1, &scale);
  decode_one();
  std::vector<double> same, switched, set_only;
  for (unsigned i = 0; i < o.runs * 2; ++i) {
    llama_adapter_lora* other = current == first.get() ? second.get() : first.get();
    // The baseline: the set unchanged (llama.cpp compares and does nothing).
    auto t = Clock::now();
    llama_set_adapters_lora(ctx.get(), &current, 1, &scale);
    decode_one();
    same.push_back(seconds_since(t) * 1e6);
    // The switch: the other adapter, then the same decode.
    t = Clock::now();
    llama_set_adapters_lora(ctx.get(), &other, 1, &scale);
    set_only.push_back(seconds_since(t) * 1e6);
    decode_one();
    switched.push_back(seconds_since(t) * 1e6);
    current = other;
  }
  r.same_us = summarize(same).p50;
  r.switch_us = summarize(switched).p50 - r.same_us;
  r.set_only_us = summarize(set_only).p50;
  return r;
}

std::vector<std::string> memories(std::size_t count) {
  const char* people[] = {"Maya", "Tiago", "Inês", "Rui", "Sofia", "João", "Beatriz", "Miguel"};
  const char* things[] = {"grilled sardines with lemon",   "a trip to the Azores in May",
                          "the new bakery near the river", "learning Japanese kanji",
                          "a second-hand road bike",       "her grandmother's cod recipe"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(std::string(people[i % 8]) + " talked about " + things[(i * 5) % 6] + " (note " +
                  std::to_string(i + 1) + ").");
  }
  return out;
}

struct Ttft {
  double base_ms = 0, adapter_ms = 0;
  std::uint32_t block_tokens = 0;
};

// TTFT of a whole-block chat through memosd, without and with an adapter.
Ttft through_memosd(const std::string& model_path, const std::string& adapter, const Options& o) {
  memos::testing::TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[executor]\nmodel = \"" << model_path << "\"\nthreads = " << o.threads
                      << "\ncontext = 4096\nbatch = 512\nmax_tokens = 16\n"
                      << "[scheduler]\nenabled = false\n";
  memos::testing::MemosdProcess daemon(o.memosd, dir.path(), {"--config", conf});
  start_daemon(daemon, o.memosd, std::chrono::seconds(300));
  auto client = connect_client(daemon.socket());
  create_cube(*client, "bench");
  std::ifstream in(adapter, std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  check(client->param_add("bench", "style", bytes), "param add");
  // About --tokens of memories (about 12 tokens each).
  std::vector<std::uint64_t> ids;
  for (const auto& text : memories(o.tokens / 12)) {
    auto r = client->add("bench", {text});
    check(r, "add");
    ids.push_back(r->id);
  }
  Ttft out;
  std::vector<double> base, adapted;
  for (unsigned i = 0; i < std::max(3u, o.runs / 4); ++i) {
    for (bool with : {false, true}) {
      memos::ChatOptions chat;
      chat.ids = ids;
      chat.max_tokens = 1;
      chat.no_reuse = true;  // decoded whole: no stored state, no recent prompt
      if (with) chat.adapters = {{"style", 0}};
      auto r = client->chat("bench", "What should I cook tonight?", chat);
      check(r, "chat");
      out.block_tokens = r->block_tokens;
      (with ? adapted : base).push_back(r->first_token_ms);
    }
  }
  out.base_ms = summarize(base).p50;
  out.adapter_ms = summarize(adapted).p50;
  client.reset();
  stop_daemon(daemon);
  return out;
}

// Facts no model knows: names, places and numbers drawn so that each fact
// is its own (a model cannot guess one from another).
std::vector<std::string> facts(std::size_t count) {
  const char* people[] = {"Maya", "Tiago", "Ines", "Rui", "Sofia", "Joao", "Beatriz", "Miguel"};
  const char* pets[] = {"a grey cat", "a parrot", "two goldfish", "a border collie", "a tortoise"};
  const char* towns[] = {"Almada", "Braga", "Tavira", "Viseu", "Sintra", "Evora", "Aveiro"};
  const char* jobs[] = {"nurse", "luthier", "ferry pilot", "pastry chef", "geologist"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(std::string(people[i % 8]) + " keeps " + pets[(i * 3) % 5] + " in " +
                  towns[(i * 5) % 7] + ", works as a " + jobs[(i * 7) % 5] + ", and has locker " +
                  std::to_string(100 + (i * 37) % 900) + ".");
  }
  return out;
}

const std::vector<std::string>& control_texts() {
  static const std::vector<std::string> t = {
      "The committee postponed the vote on the bridge budget until the spring session.",
      "Volcanic soils hold water well and suit vineyards planted on steep terraces.",
      "A compiler lowers the syntax tree into an intermediate form before optimizing it.",
      "The orchestra tuned to the oboe's A before the overture began."};
  return t;
}

struct Score {
  double nll = 0;
  std::uint64_t tokens = 0, correct = 0;
  double ppl() const { return std::exp(nll / static_cast<double>(tokens)); }
  double acc() const { return static_cast<double>(correct) / static_cast<double>(tokens); }
};

// How well the model (with `adapter`, if any, at scale 1) predicts each
// text's tokens after its first.
Score score(llama_model* model, llama_adapter_lora* adapter, const std::vector<std::string>& texts,
            const Options& o) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = static_cast<int32_t>(o.threads);
  ContextPtr ctx(llama_init_from_model(model, cp), &llama_free);
  if (!ctx) throw std::runtime_error("llama_init_from_model failed");
  float scale = 1;
  if (adapter) llama_set_adapters_lora(ctx.get(), &adapter, 1, &scale);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  Score out;
  for (const std::string& text : texts) {
    std::vector<llama_token> t(text.size() + 8);
    const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), t.data(),
                                 static_cast<int32_t>(t.size()), true, false);
    if (n < 2) throw std::runtime_error("tokenizing a text failed");
    t.resize(static_cast<std::size_t>(n));
    llama_memory_seq_rm(llama_get_memory(ctx.get()), 0, -1, -1);
    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
      batch.token[i] = t[static_cast<std::size_t>(i)];
      batch.pos[i] = i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    const int rc = llama_decode(ctx.get(), batch);
    llama_batch_free(batch);
    if (rc != 0) throw std::runtime_error("llama_decode failed");
    for (int i = 0; i + 1 < n; ++i) {
      const float* logits = llama_get_logits_ith(ctx.get(), i);
      const llama_token next = t[static_cast<std::size_t>(i) + 1];
      float top = logits[0];
      llama_token best = 0;
      for (llama_token v = 1; v < n_vocab; ++v) {
        if (logits[v] > top) top = logits[v], best = v;
      }
      double sum = 0;
      for (llama_token v = 0; v < n_vocab; ++v) sum += std::exp(logits[v] - top);
      out.nll += std::log(sum) - (logits[next] - top);
      out.correct += best == next;
      ++out.tokens;
    }
  }
  return out;
}

// A distillation through memosd's job path, then its adapter scored here.
void distill_phase(const std::string& preset, const Options& o) {
  const std::string& type = o.distill_type;
  const std::string model = cached_mkmodel(
      "bench-param", MEMOS_MKMODEL, "memos-mkmodel-" + preset + "-" + type + "-seed1-chatml.gguf",
      {"--vocab", MEMOS_BENCH_VOCAB, "--preset", preset, "--type", type, "--seed", "1"});
  memos::testing::TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[executor]\nmodel = \"" << model << "\"\nthreads = " << o.threads
                      << "\ncontext = 2048\nbatch = 512\nmax_tokens = 16\n"
                      << "[scheduler]\nenabled = false\n";
  memos::testing::MemosdProcess daemon(o.memosd, dir.path(), {"--config", conf});
  start_daemon(daemon, o.memosd, std::chrono::seconds(300));
  auto client = connect_client(daemon.socket());
  create_cube(*client, "bench");
  const std::vector<std::string> texts = facts(o.memories);
  for (const auto& text : texts) check(client->add("bench", {text}), "add");
  memos::DistillArgs args;
  args.cube = "bench";
  args.name = "facts";
  args.rank = kRank;
  args.steps = o.distill_steps;
  const auto start = Clock::now();
  auto job = client->param_distill(args);
  check(job, "param distill");
  memos::Job j = *job;
  while (!j.finished()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = client->job_show(j.id);
    check(r, "job show");
    j = *r;
  }
  const double seconds = seconds_since(start);
  if (j.state != "done") throw std::runtime_error("the distillation " + j.state + ": " + j.message);
  const std::string adapter_path = dir.path() + "/facts.gguf";
  {
    std::ofstream file(adapter_path, std::ios::binary);
    auto exported = client->param_export("bench", "facts", 0, [&](std::string_view chunk) {
      file.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      return static_cast<bool>(file);
    });
    check(exported, "param export");
  }
  client.reset();
  stop_daemon(daemon);

  ModelPtr m(llama_model_load_from_file(model.c_str(), llama_model_default_params()),
             &llama_model_free);
  if (!m) throw std::runtime_error("cannot load " + model);
  AdapterPtr a(llama_adapter_lora_init(m.get(), adapter_path.c_str()), &llama_adapter_lora_free);
  if (!a) throw std::runtime_error("llama.cpp refused the distilled adapter");
  const Score base = score(m.get(), nullptr, texts, o);
  const Score adapted = score(m.get(), a.get(), texts, o);
  const Score control_base = score(m.get(), nullptr, control_texts(), o);
  const Score control_adapted = score(m.get(), a.get(), control_texts(), o);
  JsonLine()
      .str("bench", "param")
      .str("phase", "distill")
      .str("preset", preset)
      .count("memories", texts.size())
      .count("tokens", j.tokens)
      .num("seconds", seconds, 1)
      .str("model_type", type)
      .count("rank", kRank)
      .count("steps", o.distill_steps)
      .num("adapter_mb", static_cast<double>(fs::file_size(adapter_path)) / (1 << 20), 2)
      .num("ppl_base", base.ppl(), 1)
      .num("ppl_adapter", adapted.ppl(), 1)
      .num("ppl_ratio", adapted.ppl() / base.ppl(), 3)
      .num("control_ppl_ratio", control_adapted.ppl() / control_base.ppl(), 3)
      .num("next_token_acc_base", base.acc(), 3)
      .num("next_token_acc_adapter", adapted.acc(), 3)
      .num("final_loss", j.loss, 3)
      .count("threads", o.threads)
      .print();
}

void run(const Options& o) {
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);  // keep stdout JSON
  llama_backend_init();
  const auto wants = [&](const char* phase) {
    return std::find(o.phases.begin(), o.phases.end(), phase) != o.phases.end();
  };
  for (const std::string& preset : o.presets) {
    if (wants("distill")) distill_phase(preset, o);
    if (!wants("switch")) continue;
    const std::string type = preset == "0.5b" ? "f16" : "f32";
    const std::string model = cached_mkmodel(
        "bench-param", MEMOS_MKMODEL, "memos-mkmodel-" + preset + "-" + type + "-seed1-chatml.gguf",
        {"--vocab", MEMOS_BENCH_VOCAB, "--preset", preset, "--type", type, "--seed", "1"});
    std::vector<std::string> adapters;
    for (const char* seed : {"1", "2"}) {
      adapters.push_back(
          cached_mkmodel("bench-param", MEMOS_MKMODEL,
                         "lora-r" + std::to_string(kRank) + "-seed" + seed + "-for-" +
                             fs::path(model).filename().string(),
                         {"--lora-for", model, "--rank", std::to_string(kRank), "--seed", seed}));
    }
    const InProcess p = in_process(model, adapters[0], adapters[1], o);
    const Ttft t = through_memosd(model, adapters[0], o);
    JsonLine()
        .str("bench", "param")
        .str("phase", "switch")
        .str("preset", preset)
        .count("rank", kRank)
        .num("adapter_mb", static_cast<double>(fs::file_size(adapters[0])) / (1 << 20), 2)
        .num("load_ms", p.load_ms, 2)
        .num("switch_us", p.switch_us, 1)
        .num("set_only_us", p.set_only_us, 1)
        .num("decode_one_us", p.same_us, 1)
        .count("block_tokens", t.block_tokens)
        .num("ttft_base_ms", t.base_ms, 1)
        .num("ttft_adapter_ms", t.adapter_ms, 1)
        .num("adapter_cost", t.adapter_ms / t.base_ms, 2)
        .count("threads", o.threads)
        .print();
  }
  llama_backend_free();
}

}  // namespace

int main(int argc, char** argv) {
  return bench_main("bench-param", "", argc, argv, parse, run);
}
