// kv-ttft: time to the first token of `memctl chat` over a memory block of N
// tokens, with the block prefilled (no stored state) and with its state
// restored from the activation tier, through a real memosd, against a raw
// in-process llama_state_seq_set_data of the same block's state (the limit
// of a restore).
//
// The model is made by memos-mkmodel (Qwen2.5-0.5B's shape, f16, random
// weights: speed does not depend on what the weights say; trained context
// 16384 so blocks of 8192 tokens fit) and cached.
//
//   bench-kv-ttft [--tokens 512,2048] [--threads 2] [--runs 5] [--model FILE]
//                 [--device auto|cpu|gpu] [--gpu-max-mb 0]
//
// --device is memosd's executor.device and where the in-process baseline
// runs (gpu: every layer and the KV cache on the first GPU; it needs
// llama.cpp built for CUDA, scripts/build-llama). The line names the device.
// --gpu-max-mb is memosd's activation.gpu_max_mb: resident states kept in
// the KV cache on the device, whose cells a restore shares.
//
// One JSON line per block size:
//   {"tokens": N, "prefill_ms", "activated_ms", "activated_cold_ms",
//    "raw_restore_ms", "daemon_restore_ms", "restore_ratio", "speedup", ...}
// prefill_ms and activated_ms are what a client waits for one generated
// token; daemon_restore_ms is the executor's own restore of a resident state
// (restore_ratio = daemon_restore_ms / raw_restore_ms).
#include <llama.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/bench_util.h"
#include "kernel/memory_block.h"

using namespace memos::bench;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string memosd;
  std::string model;
  std::vector<std::size_t> sizes = {512, 2048};
  unsigned threads = 2;
  unsigned runs = 5;
  std::string device = "auto";
  std::uint64_t gpu_max_mb = 0;
  // Tokens of context: the largest block, the prompt and the answer.
  std::uint32_t context() const {
    std::size_t most = *std::max_element(sizes.begin(), sizes.end());
    return static_cast<std::uint32_t>(std::max<std::size_t>(4096, (most + 512 + 511) / 512 * 512));
  }
};

constexpr std::uint32_t kTrainedContext = 16384;
constexpr std::uint32_t kBatch = 512;
const char* const kPrompt = "What should I cook for dinner tonight?";

Options parse(int argc, char** argv) {
  Options o;
  read_options(argc, argv,
               "bench-kv-ttft [--tokens 512,2048] [--threads 2] [--runs 5] [--model FILE]\n"
               "              [--device auto|cpu|gpu] [--gpu-max-mb 0]\n",
               [&](std::string_view flag, std::string_view value) {
                 if (flag == "--memosd") {
                   o.memosd = value;
                 } else if (flag == "--model") {
                   o.model = value;
                 } else if (flag == "--threads") {
                   o.threads = static_cast<unsigned>(parse_positive(flag, value));
                 } else if (flag == "--device") {
                   if (value != "auto" && value != "cpu" && value != "gpu")
                     throw UsageError("--device: auto, cpu or gpu");
                   o.device = value;
                 } else if (flag == "--gpu-max-mb") {
                   o.gpu_max_mb = value == "0" ? 0 : parse_positive(flag, value);
                 } else if (flag == "--runs") {
                   o.runs = static_cast<unsigned>(parse_positive(flag, value));
                 } else if (flag == "--tokens") {
                   o.sizes.clear();
                   std::stringstream list{std::string(value)};
                   for (std::string one; std::getline(list, one, ',');) {
                     auto n = parse_positive(flag, one);
                     if (n + 512 > kTrainedContext) throw UsageError("--tokens: at most 15872");
                     o.sizes.push_back(n);
                   }
                 } else {
                   return false;
                 }
                 return true;
               });
  if (o.memosd.empty()) throw UsageError("--memosd is required (scripts/bench passes it)");
  return o;
}

// Memories that read like a person's: names, places, habits, dates.
std::vector<std::string> memories(std::size_t count) {
  const char* people[] = {"Maya", "Tiago", "Inês", "Rui", "Sofia", "João", "Beatriz", "Miguel"};
  const char* verbs[] = {"likes",  "cooked",      "visited",    "talked about",
                         "bought", "is planning", "remembered", "recommended"};
  const char* things[] = {"grilled sardines with lemon",   "a trip to the Azores in May",
                          "the new bakery near the river", "learning Japanese kanji",
                          "a second-hand road bike",       "her grandmother's cod recipe",
                          "the concert at the Coliseu",    "repairing the balcony door"};
  const char* whens[] = {"last Saturday",       "on Tuesday evening", "two weeks ago",
                         "during the holidays", "this morning",       "after work"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(std::string(people[i % 8]) + " " + verbs[(i / 8) % 8] + " " +
                  things[(i * 3 + i / 64) % 8] + " " + whens[(i * 5) % 6] + " (note " +
                  std::to_string(i + 1) + ").");
  }
  return out;
}

using ModelPtr = std::unique_ptr<llama_model, decltype(&llama_model_free)>;
using ContextPtr = std::unique_ptr<llama_context, decltype(&llama_free)>;

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text, bool bos) {
  std::vector<llama_token> out(text.size() + 8);
  int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                         static_cast<int32_t>(out.size()), bos, false);
  if (n < 0) throw std::runtime_error("tokenize failed");
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The first `count` of `texts` as the memory block memosd builds.
std::string block_of(const std::vector<std::string>& texts, std::size_t count) {
  std::vector<memos::store::Item> items(count);
  for (std::size_t i = 0; i < count; ++i) {
    items[i].id = i + 1;
    items[i].text = texts[i];
  }
  return memos::kernel::build_memory_block(std::move(items)).text;
}

struct InProcess {
  double prefill_ms = 0;
  double restore_ms = 0;      // median, after a decode (as between chats)
  double restore_hot_ms = 0;  // median, back to back
  std::size_t state_bytes = 0;
};

// Decodes `tokens` the way the executor does (batches of kBatch) and times
// llama_state_seq_set_data of the resulting state.
InProcess raw_restore(llama_model* model, const std::vector<llama_token>& tokens,
                      const std::vector<llama_token>& prompt, const Options& o) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = o.context();
  cp.n_batch = kBatch;
  cp.n_ubatch = kBatch;
  cp.n_threads = cp.n_threads_batch = static_cast<int32_t>(o.threads);
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  ContextPtr ctx(llama_init_from_model(model, cp), &llama_free);
  if (!ctx) throw std::runtime_error("llama_init_from_model failed");
  InProcess r;
  auto start = Clock::now();
  for (std::size_t at = 0; at < tokens.size(); at += kBatch) {
    auto n = static_cast<int32_t>(std::min<std::size_t>(kBatch, tokens.size() - at));
    llama_batch batch = llama_batch_get_one(const_cast<llama_token*>(tokens.data() + at), n);
    if (llama_decode(ctx.get(), batch) != 0) throw std::runtime_error("llama_decode failed");
  }
  r.prefill_ms = seconds_since(start) * 1000;
  std::vector<std::uint8_t> state(llama_state_seq_get_size(ctx.get(), 0));
  r.state_bytes = llama_state_seq_get_data(ctx.get(), state.data(), state.size(), 0);
  // Back to back, the state and the cache's cells stay in the CPU's caches:
  // the best case. Between two chats the model runs (the prompt is decoded,
  // tokens generated) and evicts them, so the restore is also timed after a
  // decode of the prompt, as memosd's executor does it.
  std::vector<double> hot, after_decode;
  llama_memory_t mem = llama_get_memory(ctx.get());
  for (unsigned i = 0; i < std::max(o.runs, 3u); ++i) {
    for (auto* out : {&hot, &after_decode}) {
      llama_memory_seq_rm(mem, 0, -1, -1);
      auto t = Clock::now();
      std::size_t read = llama_state_seq_set_data(ctx.get(), state.data(), r.state_bytes, 0);
      out->push_back(seconds_since(t) * 1000);
      if (read == 0) throw std::runtime_error("llama_state_seq_set_data failed");
      auto n = static_cast<int32_t>(prompt.size());
      llama_batch batch = llama_batch_get_one(const_cast<llama_token*>(prompt.data()), n);
      if (out == &after_decode && llama_decode(ctx.get(), batch) != 0)
        throw std::runtime_error("llama_decode failed");
    }
  }
  r.restore_ms = summarize(after_decode).p50;
  r.restore_hot_ms = summarize(hot).p50;
  return r;
}

std::string ensure_model(const Options& o) {
  if (!o.model.empty()) return o.model;
  const char* home = std::getenv("HOME");
  fs::path dir =
      fs::path(std::getenv("MEMOS_DEPS_DIR") ? std::getenv("MEMOS_DEPS_DIR")
                                             : std::string(home ? home : ".") + "/.cache/memosd") /
      "models";
  fs::create_directories(dir);
  fs::path path = dir / "memos-mkmodel-0.5b-f16-seed1-ctx16384-chatml.gguf";
  if (fs::exists(path)) return path;
  std::cerr << "kv-ttft: making " << path << " (once)\n";
  std::string out, err;
  int rc = memos::testing::run_command(
      {MEMOS_MKMODEL, "--out", path.string(), "--vocab", MEMOS_BENCH_VOCAB, "--preset", "0.5b",
       "--type", "f16", "--seed", "1", "--ctx", std::to_string(kTrainedContext)},
      &out, &err);
  if (rc != 0) throw std::runtime_error("memos-mkmodel failed: " + err);
  return path;
}

void run(const Options& o) {
  std::string model_path = ensure_model(o);
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);  // keep stdout JSON
  llama_backend_init();
  // The baseline on the device memosd's executor uses: on the CPU no device
  // at all (llama.cpp would hand large products to a GPU it found).
  llama_model_params mp = llama_model_default_params();
  std::vector<ggml_backend_dev_t> devices;
  if (o.device != "cpu") {
    for (std::size_t i = 0; i < ggml_backend_dev_count() && devices.empty(); ++i) {
      ggml_backend_dev_t dev = ggml_backend_dev_get(i);
      if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) devices.push_back(dev);
    }
    if (devices.empty() && o.device == "gpu")
      throw std::runtime_error("--device gpu: llama.cpp offers no GPU (built for the CPU only?)");
  }
  const std::string baseline_device =
      devices.empty() ? "CPU" : std::string(ggml_backend_dev_name(devices.front()));
  devices.push_back(nullptr);
  mp.devices = devices.data();
  mp.n_gpu_layers = devices.size() > 1 ? -1 : 0;
  mp.split_mode = LLAMA_SPLIT_MODE_NONE;
  ModelPtr model(llama_model_load_from_file(model_path.c_str(), mp), &llama_model_free);
  if (!model) throw std::runtime_error("cannot load " + model_path);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());

  memos::testing::TempDir dir;
  std::string conf = dir.path() + "/memosd.conf";
  std::ofstream(conf) << "[executor]\nmodel = \"" << model_path << "\"\nthreads = " << o.threads
                      << "\ncontext = " << o.context() << "\nbatch = " << kBatch
                      << "\nmax_tokens = 16\ndevice = \"" << o.device << "\"\n"
                      << "[activation]\ngpu_max_mb = " << o.gpu_max_mb << "\n";
  memos::testing::MemosdProcess daemon(o.memosd, dir.path(), {"--config", conf});
  start_daemon(daemon, o.memosd, std::chrono::seconds(300));
  auto client = connect_client(daemon.socket());
  auto status = client->status();
  check(status, "status");
  const std::string device =
      status->executor_device == "CPU"
          ? "CPU"
          : status->executor_device + " (" + status->executor_device_description + ")";
  if (o.device == "gpu" && status->executor_device == "CPU")
    throw std::runtime_error("--device gpu: memosd's executor runs on the CPU");

  for (std::size_t s = 0; s < o.sizes.size(); ++s) {
    const std::size_t target = o.sizes[s];
    // Other memories for each size, so no block is a prefix of another.
    std::vector<std::string> texts = memories(400 * (s + 1));
    texts.erase(texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(400 * s));
    // The most memories whose block stays within `target` tokens (plainly
    // laid out; the chat template adds a few).
    std::size_t count = 1;
    while (count < texts.size() &&
           tokenize(vocab, block_of(texts, count + 1), true).size() <= target) {
      ++count;
    }
    auto block_tokens = tokenize(vocab, block_of(texts, count), true);
    std::string cube = "kv" + std::to_string(target);
    create_cube(*client, cube);
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 0; i < count; ++i) {
      auto r = client->add(cube, {texts[i]});
      check(r, "add");
      ids.push_back(r->id);
    }
    memos::ChatOptions chat;
    chat.ids = ids;
    chat.max_tokens = 1;
    auto timed = [&](memos::ChatOptions options, memos::ChatReply* reply) {
      auto t = Clock::now();
      auto r = client->chat(cube, kPrompt, options);
      double ms = seconds_since(t) * 1000;
      check(r, "chat");
      *reply = r.value();
      return ms;
    };
    memos::ChatReply reply;
    auto plain = chat;
    plain.no_reuse = true;
    double prefill_ms = timed(plain, &reply);
    // memosd lays the block out in the model's chat template: the in-process
    // restore covers as many tokens as its block has (a restore's cost
    // depends on the count, not on which tokens).
    block_tokens.resize(reply.block_tokens, block_tokens.empty() ? 0 : block_tokens.back());
    const std::uint32_t prompt_tokens = reply.prompt_tokens;
    auto activate = chat;
    activate.activate = true;
    timed(activate, &reply);
    if (reply.activation_status != memos::ActivationOutcome{.stored = true}) {
      throw std::runtime_error("activation not stored: " +
                               memos::to_string(reply.activation_status));
    }
    double cold_ms = timed(chat, &reply);
    double cold_restore_ms = reply.restore_ms;
    if (reply.activation_status != memos::ActivationOutcome{.restored = true})
      throw std::runtime_error("not restored: " + memos::to_string(reply.activation_status));
    std::vector<double> activated, restore;
    for (unsigned i = 0; i < o.runs; ++i) {
      activated.push_back(timed(chat, &reply));
      restore.push_back(reply.restore_ms);
    }
    auto prompt = tokenize(vocab, std::string("\nUser: ") + kPrompt + "\nAssistant:", false);
    prompt.resize(reply.prompt_tokens - reply.block_tokens, prompt.empty() ? 0 : prompt.back());
    InProcess raw = raw_restore(model.get(), block_tokens, prompt, o);
    double activated_ms = summarize(activated).p50;
    double daemon_restore_ms = summarize(restore).p50;
    JsonLine()
        .str("bench", "kv-ttft")
        .count("tokens", block_tokens.size())
        .count("prompt_tokens", prompt_tokens)
        .count("memories", count)
        .num("prefill_ms", prefill_ms, 1)
        .num("activated_ms", activated_ms, 1)
        .num("activated_cold_ms", cold_ms, 1)
        .num("raw_restore_ms", raw.restore_ms, 2)
        .num("raw_restore_hot_ms", raw.restore_hot_ms, 2)
        .num("daemon_restore_ms", daemon_restore_ms, 2)
        .num("daemon_cold_restore_ms", cold_restore_ms, 2)
        .num("restore_ratio", daemon_restore_ms / raw.restore_ms, 2)
        .num("raw_prefill_ms", raw.prefill_ms, 1)
        .count("state_bytes", raw.state_bytes)
        .num("speedup", prefill_ms / activated_ms, 1)
        .count("threads", o.threads)
        .str("device", device)
        .str("baseline_device", baseline_device)
        .count("gpu_max_mb", o.gpu_max_mb)
        .print();
  }
  client.reset();
  stop_daemon(daemon);
  llama_backend_free();
}

}  // namespace

int main(int argc, char** argv) {
  return bench_main("bench-kv-ttft", "", argc, argv, parse, run);
}
