// The llama.cpp executor and GGUF embedder plugins, loaded as shared objects
// through the loader and driven with real plugin.capnp messages, on tiny
// models memos-mkmodel (MEMOS_MKMODEL) makes once per run.
//
// The central property: restoring a state and decoding the rest gives
// exactly (memcmp) the logits of a recomputation that splits its batches
// where the state ends, whichever way the prompt relates to the state (it
// extends it, equals it, or leaves it inside). States that must not be used
// (another model or KV type, corrupt, fuzzed) are rejected without a crash
// and the answer equals a plain recomputation.
#define BOOST_TEST_MODULE llama_executor
#include <boost/test/unit_test.hpp>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <ggml.h>
#include <gguf.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ipc/schema/plugin.capnp.h"
#include "plugins/llama-executor/utf8.h"
#include "plugins/loader/channel.h"
#include "plugins/loader/isolated.h"
#include "plugins/loader/library.h"
#include "plugins/loader/manifest.h"
#include "tests/support/memosd_process.h"

using memos::testing::run_command;
using memos::testing::TempDir;
using Settings = std::map<std::string, std::string>;
using Tokens = std::vector<std::int32_t>;
namespace wire = memos::plugin_wire;
namespace fs = std::filesystem;

namespace {

// ---- models, made once ------------------------------------------------------

std::string make_model(const std::string& path, const std::string& preset, int seed) {
  std::string out, err;
  const int rc = run_command({MEMOS_MKMODEL, "--out", path, "--vocab", MEMOS_TEST_VOCAB, "--preset",
                              preset, "--seed", std::to_string(seed)},
                             &out, &err);
  if (rc != 0) throw std::runtime_error("memos-mkmodel failed: " + err);
  return path;
}

std::string make_lora(const std::string& path, const std::string& model, int seed) {
  std::string out, err;
  const int rc = run_command(
      {MEMOS_MKMODEL, "--lora-for", model, "--out", path, "--seed", std::to_string(seed)}, &out,
      &err);
  if (rc != 0) throw std::runtime_error("memos-mkmodel --lora-for failed: " + err);
  return path;
}

struct Models {
  TempDir dir;
  std::string a, b;                      // tiny, seeds 1 and 2
  std::string lora_a1, lora_a2, lora_b;  // random LoRAs: two for a, one for b
  Models() {
    spdlog::set_level(spdlog::level::err);  // rejected states warn; the tests read stateStatus
    a = make_model(dir.path() + "/a.gguf", "tiny", 1);
    b = make_model(dir.path() + "/b.gguf", "tiny", 2);
    lora_a1 = make_lora(dir.path() + "/a1.lora.gguf", a, 1);
    lora_a2 = make_lora(dir.path() + "/a2.lora.gguf", a, 2);
    lora_b = make_lora(dir.path() + "/b.lora.gguf", b, 1);
  }
};

const Models& models() {
  static Models m;
  return m;
}

// ---- bytes ------------------------------------------------------------------

std::string sha256(const std::string& bytes) {
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(d), 32);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A state in the blob store: the file and what memosd would send with it.
struct Stored {
  std::string path, digest;
  std::uint64_t size = 0;
  std::string kind = "lora";  // as an adapter: "lora" or "cvec"
};

Stored store(const std::string& path, const std::string& bytes) {
  write_file(path, bytes);
  return {path, sha256(bytes), bytes.size()};
}

// The length of our header (before llama.cpp's bytes), read as the
// executor's README describes it.
std::size_t header_size(const std::string& blob) {
  auto u32 = [&](std::size_t at) {
    std::uint32_t v;
    std::memcpy(&v, blob.data() + at, 4);
    return v;
  };
  std::size_t at = 8 + 4 + 32;
  for (int i = 0; i < 3; ++i) at += 4 + u32(at);
  at += 4 + 4 * std::size_t{u32(at)};
  return at + 8;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A prompt of BOS and `n - 1` seeded ids: the model is noise, any id will do.
Tokens prompt(std::size_t n, unsigned seed, std::int32_t bos = 1) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> id(300, 31000);
  Tokens t{bos};
  while (t.size() < n) t.push_back(id(rng));
  return t;
}

Tokens slice(const Tokens& t, std::size_t from, std::size_t to) {
  return Tokens(t.begin() + static_cast<long>(from), t.begin() + static_cast<long>(to));
}

Tokens concat(Tokens a, const Tokens& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- the plugins, through the loader ----------------------------------------

// Where the executors of these tests run: MEMOS_TEST_DEVICE (scripts/test-gpu
// sets "gpu", so that a test meant for the GPU never passes on the CPU),
// else "auto" (the CPU on a machine without a GPU).
std::string test_device() {
  const char* d = std::getenv("MEMOS_TEST_DEVICE");
  return d && *d ? d : "auto";
}

memos::plugins::LoadedLibrary load(const std::string& name, const Settings& settings) {
  using namespace memos::plugins;
  Manifest manifest;
  const std::string path = std::string(MEMOS_PLUGIN_DIR) + "/" + name + "/" + name + ".plugin.toml";
  const std::string problem = read_manifest(path, &manifest);
  if (!problem.empty()) throw std::runtime_error(problem);
  for (const auto& [k, v] : settings) manifest.settings[k] = v;
  LoadedLibrary library;
  const std::string error = load_library(manifest, &library);
  if (!error.empty()) throw std::runtime_error(error);
  return library;
}

// What create() says when it fails: its status and what it logged.
struct CreateOutcome {
  memos_status status = MEMOS_OK;
  std::string log;
};

CreateOutcome try_create(const std::string& name, const Settings& settings) {
  const auto library = load(name, settings);
  static std::string captured;
  captured.clear();
  memos_host_api api{};
  api.struct_size = sizeof api;
  api.abi_minor = MEMOS_PLUGIN_ABI_MINOR;
  api.log = [](void*, int, const char* m, std::size_t n) { captured.append(m, n) += '\n'; };
  api.complete = [](memos_call*, memos_status, const std::uint8_t*, std::size_t) {};
  api.is_cancelled = [](memos_call*) { return 0; };
  const std::string config = memos::plugins::config_message(library.manifest.settings);
  memos_instance* instance = nullptr;
  CreateOutcome out;
  out.status = library.descriptor->vtable->create(
      &api, reinterpret_cast<const std::uint8_t*>(config.data()), config.size(), &instance);
  if (instance) library.descriptor->vtable->destroy(instance);
  out.log = captured;
  return out;
}

struct Response {
  memos_status status = MEMOS_ERR_INTERNAL;
  std::string error;
  std::vector<capnp::word> words;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  wire::PluginResponse::Reader get() const { return reader->getRoot<wire::PluginResponse>(); }
};

struct GenerateArgs {
  Tokens tokens;
  const Stored* state = nullptr;
  std::uint32_t max_tokens = 0;
  float temperature = 0;
  std::uint32_t export_tokens = 0;
  bool want_logits = true;
  std::uint32_t split = 0;
  bool stream = false;
  std::string scope{};  // GenerateRequest.cacheScope
  // GenerateRequest.adapters: each file and its scale.
  std::vector<std::pair<const Stored*, float>> adapters{};
};

void set_adapter(wire::AdapterRef::Builder ref, const Stored& file, float scale) {
  ref.setPath(file.path);
  ref.setDigest(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(file.digest.data()),
                                    file.digest.size()));
  ref.setSize(file.size);
  ref.setScale(scale);
  ref.setKind(file.kind);
}

struct GenerateOut {
  memos_status status = MEMOS_ERR_INTERNAL;
  std::string error, text, state_status, finish, exported;
  Tokens tokens;
  std::uint32_t reused = 0, cached = 0;
  bool resident = false;
  std::vector<float> logits;
  double restore_ms = 0, prefill_ms = 0, export_prefill_ms = 0;
  // What a streamed call reported, in order: text pieces, and progress.
  std::vector<std::string> pieces;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> progress;
  bool progress_after_text = false;
};

// A plugin in this process (through the loader) or, `isolated`, in
// memos-plugin-host (MEMOS_PLUGIN_HOST) as memosd runs it by default.
class Plugin {
 public:
  Plugin(const std::string& name, const Settings& settings, bool isolated = false) {
    using namespace memos::plugins;
    LoadedLibrary library = load(name, settings);
    if (isolated) {
      IsolationPolicy policy;
      policy.host_binary = MEMOS_PLUGIN_HOST;
      auto channel = std::make_unique<IsolatedChannel>(library.manifest, policy);
      const std::string error = channel->start();
      if (!error.empty()) throw std::runtime_error(error);
      channel_ = std::move(channel);
    } else {
      std::string error;
      auto instance = PluginInstance::create(library, &error);
      if (!instance) throw std::runtime_error(error);
      channel_ = std::make_unique<InProcessChannel>(std::move(instance));
    }
  }

  template <class Fill>
  Response call(Fill&& fill, const memos::plugins::PartialSink& on_partial = {}) {
    capnp::MallocMessageBuilder request;
    fill(request.initRoot<wire::PluginRequest>());
    auto words = capnp::messageToFlatArray(request);
    auto bytes = words.asBytes();
    auto result = channel_->call(std::string(bytes.begin(), bytes.end()), std::chrono::seconds(120),
                                 std::size_t{1} << 30, on_partial);
    Response r;
    r.status = result.status;
    r.error = result.message;
    if (!result.reply.empty()) {
      r.words.resize(result.reply.size() / sizeof(capnp::word));
      std::memcpy(r.words.data(), result.reply.data(), result.reply.size());
      capnp::ReaderOptions options;
      options.traversalLimitInWords = std::uint64_t{1} << 32;
      r.reader = std::make_unique<capnp::FlatArrayMessageReader>(
          kj::arrayPtr(r.words.data(), r.words.size()), options);
      if (r.get().isError()) r.error = r.get().getError().getMessage().cStr();
    }
    return r;
  }

 private:
  std::unique_ptr<memos::plugins::PluginChannel> channel_;
};

class Executor : public Plugin {
 public:
  explicit Executor(Settings settings = {}, const std::string& model = models().a,
                    bool isolated = false)
      : Plugin("llama-executor", with_model(std::move(settings), model), isolated) {}

  static Settings with_model(Settings s, const std::string& model) {
    if (!s.count("model")) s["model"] = model;
    if (!s.count("device")) s["device"] = test_device();
    if (!s.count("batch")) s["batch"] = "16";
    if (!s.count("context")) s["context"] = "256";
    return s;
  }

  Tokens tokenize(const std::string& text, bool add_special) {
    auto r = call([&](wire::PluginRequest::Builder q) {
      auto t = q.initTokenize();
      t.setText(text);
      t.setAddSpecial(add_special);
    });
    BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
    Tokens out;
    for (auto t : r.get().getTokens()) out.push_back(t);
    return out;
  }

  std::string prefill(const Tokens& tokens, const std::string& scope = "") {
    auto r = call([&](wire::PluginRequest::Builder q) {
      auto p = q.initPrefill();
      auto list = p.initTokens(static_cast<unsigned>(tokens.size()));
      for (unsigned i = 0; i < tokens.size(); ++i) list.set(i, tokens[i]);
      p.setCacheScope(
          capnp::Data::Reader(reinterpret_cast<const kj::byte*>(scope.data()), scope.size()));
    });
    BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
    auto p = r.get().getPrefilled();
    BOOST_TEST(p.getTokens() == tokens.size());
    auto s = p.getState();
    return std::string(reinterpret_cast<const char*>(s.begin()), s.size());
  }

  GenerateOut generate(const GenerateArgs& a) {
    GenerateOut out;
    memos::plugins::PartialSink sink;
    if (a.stream) {
      sink = [&out](std::string_view bytes) {
        std::vector<capnp::word> words(bytes.size() / sizeof(capnp::word));
        std::memcpy(words.data(), bytes.data(), bytes.size());
        capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()));
        auto p = reader.getRoot<wire::PluginPartial>();
        if (p.isText()) {
          out.pieces.push_back(p.getText().cStr());
        } else {
          out.progress_after_text = out.progress_after_text || !out.pieces.empty();
          out.progress.emplace_back(p.getPrefill().getDone(), p.getPrefill().getTotal());
        }
      };
    }
    auto r = call(
        [&](wire::PluginRequest::Builder q) {
          auto g = q.initGenerate();
          auto list = g.initTokens(static_cast<unsigned>(a.tokens.size()));
          for (unsigned i = 0; i < a.tokens.size(); ++i) list.set(i, a.tokens[i]);
          if (a.state) {
            auto s = g.initState();
            s.setPath(a.state->path);
            s.setDigest(capnp::Data::Reader(
                reinterpret_cast<const kj::byte*>(a.state->digest.data()), a.state->digest.size()));
            s.setSize(a.state->size);
          }
          g.setMaxTokens(a.max_tokens);
          g.initSampling().setTemperature(a.temperature);
          g.setExportTokens(a.export_tokens);
          g.setWantLogits(a.want_logits);
          g.setSplitTokens(a.split);
          g.setStream(a.stream);
          g.setCacheScope(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(a.scope.data()),
                                              a.scope.size()));
          auto refs = g.initAdapters(static_cast<unsigned>(a.adapters.size()));
          for (unsigned i = 0; i < a.adapters.size(); ++i) {
            set_adapter(refs[i], *a.adapters[i].first, a.adapters[i].second);
          }
        },
        sink);
    out.status = r.status;
    out.error = r.error;
    if (r.status != MEMOS_OK) return out;
    auto g = r.get().getGenerated();
    out.text = g.getText().cStr();
    for (auto t : g.getTokens()) out.tokens.push_back(t);
    out.state_status = g.getStateStatus().cStr();
    out.finish = g.getFinish().cStr();
    out.reused = g.getReusedTokens();
    out.cached = g.getCachedTokens();
    out.resident = g.getStateResident();
    for (float v : g.getLogits()) out.logits.push_back(v);
    auto e = g.getExported();
    out.exported.assign(reinterpret_cast<const char*>(e.begin()), e.size());
    out.restore_ms = g.getRestoreMs();
    out.prefill_ms = g.getPrefillMs();
    out.export_prefill_ms = g.getExportPrefillMs();
    return out;
  }

  wire::ExecutorCapabilities::Reader describe() {
    last_ = call([](wire::PluginRequest::Builder q) { q.setDescribe(); });
    BOOST_REQUIRE_MESSAGE(last_.status == MEMOS_OK, last_.error);
    return last_.get().getCapabilities().getExecutor();
  }

  // checkAdapter: "" and the facts, or the error.
  std::string check_adapter(const Stored& file, wire::AdapterFacts::Reader* facts = nullptr) {
    last_ =
        call([&](wire::PluginRequest::Builder q) { set_adapter(q.initCheckAdapter(), file, 1); });
    if (last_.status != MEMOS_OK) return last_.error.empty() ? "failed" : last_.error;
    if (facts) *facts = last_.get().getAdapterFacts();
    return "";
  }

  // controlVector: its GGUF, or "" with the error in `error`.
  std::string control_vector(const std::vector<std::string>& positive,
                             const std::vector<std::string>& negative, std::string* error) {
    auto r = call([&](wire::PluginRequest::Builder q) {
      auto c = q.initControlVector();
      auto p = c.initPositive(static_cast<unsigned>(positive.size()));
      for (unsigned i = 0; i < positive.size(); ++i) p.set(i, positive[i]);
      auto n = c.initNegative(static_cast<unsigned>(negative.size()));
      for (unsigned i = 0; i < negative.size(); ++i) n.set(i, negative[i]);
    });
    if (r.status != MEMOS_OK) {
      *error = r.error;
      return "";
    }
    auto d = r.get().getControlVector();
    return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
  }

  // distillBegin: the id, or 0 with the error in `error`.
  std::uint64_t distill_begin(const std::vector<std::string>& texts, std::uint32_t rank,
                              std::uint32_t steps, std::string* error, float rate = 0) {
    auto r = call([&](wire::PluginRequest::Builder q) {
      auto d = q.initDistillBegin();
      auto t = d.initTexts(static_cast<unsigned>(texts.size()));
      for (unsigned i = 0; i < texts.size(); ++i) t.set(i, texts[i]);
      d.setRank(rank);
      d.setSteps(steps);
      d.setLearningRate(rate);
    });
    if (r.status != MEMOS_OK) {
      *error = r.error;
      return 0;
    }
    auto d = r.get().getDistillation();
    BOOST_TEST(d.getDone() == 0u);
    return d.getId();
  }

  // distillStep: its progress (done, total, loss), or done 0 and `error`.
  struct Progress {
    std::uint32_t done = 0, total = 0;
    float loss = 0;
    std::string error;
  };
  Progress distill_step(std::uint64_t id) {
    auto r = call([&](wire::PluginRequest::Builder q) { q.setDistillStep(id); });
    if (r.status != MEMOS_OK) return {0, 0, 0, r.error};
    auto d = r.get().getDistillation();
    return {d.getDone(), d.getTotal(), d.getLoss(), ""};
  }

  // distillFinish: the adapter's GGUF, or "" and `error`.
  std::string distill_finish(std::uint64_t id, std::string* error) {
    auto r = call([&](wire::PluginRequest::Builder q) {
      auto f = q.initDistillFinish();
      f.setId(id);
      f.setName("distilled");
    });
    if (r.status != MEMOS_OK) {
      *error = r.error;
      return "";
    }
    auto d = r.get().getAdapterFile();
    return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
  }

  std::string distill_cancel(std::uint64_t id) {
    auto r = call([&](wire::PluginRequest::Builder q) { q.setDistillCancel(id); });
    return r.status == MEMOS_OK ? "" : r.error;
  }

  // score: perplexity and next-token accuracy of `texts` with the adapter
  // (if any) at scale 1.
  std::pair<double, double> score(const std::vector<std::string>& texts,
                                  const Stored* adapter = nullptr) {
    auto r = call([&](wire::PluginRequest::Builder q) {
      auto sc = q.initScore();
      auto t = sc.initTexts(static_cast<unsigned>(texts.size()));
      for (unsigned i = 0; i < texts.size(); ++i) t.set(i, texts[i]);
      if (adapter) set_adapter(sc.initAdapters(1)[0], *adapter, 1);
    });
    BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
    auto ts = r.get().getTextScore();
    BOOST_REQUIRE(ts.getTokens() > 0u);
    const double n = static_cast<double>(ts.getTokens());
    return {std::exp(ts.getNll() / n), static_cast<double>(ts.getCorrect()) / n};
  }

  wire::ExecutorStatus::Reader status() {
    last_ = call([](wire::PluginRequest::Builder q) { q.setExecutorStatus(); });
    BOOST_REQUIRE_MESSAGE(last_.status == MEMOS_OK, last_.error);
    return last_.get().getExecutorStatus();
  }

 private:
  Response last_;
};

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The restore of `state` for `tokens` against a recomputation split at
// `split`: identical logits and greedy tokens.
// A restore of `state` for `tokens` reuses `expect_reused` tokens and
// answers as a recomputation split at the same place: bit for bit when
// `exact`; else (an executor whose KV cache keeps states in sequences of
// their own) up to rounding, with the same tokens: a restore shares a kept
// state's cells where they lie and a recomputation takes free cells
// elsewhere, so the attention sums the same terms in another order.
void check_restore_against_recompute(Executor& x, const Stored& state, const Tokens& tokens,
                                     std::uint32_t expect_reused, bool exact) {
  GenerateArgs restore{tokens, &state, 6};
  GenerateArgs recompute{tokens, nullptr, 6};
  recompute.split = expect_reused;
  const GenerateOut r = x.generate(restore), c = x.generate(recompute);
  BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
  BOOST_REQUIRE_MESSAGE(c.status == MEMOS_OK, c.error);
  BOOST_TEST(r.state_status == "restored");
  BOOST_TEST(r.reused == expect_reused);
  BOOST_TEST(c.state_status == "none");
  BOOST_TEST(r.logits.size() == 32000u);
  BOOST_REQUIRE(r.logits.size() == c.logits.size());
  if (exact) {
    BOOST_TEST(same_bytes(r.logits, c.logits));
  } else {
    float largest = 0, worst = 0;
    for (std::size_t i = 0; i < r.logits.size(); ++i) {
      largest = std::max(largest, std::fabs(c.logits[i]));
      worst = std::max(worst, std::fabs(r.logits[i] - c.logits[i]));
    }
    BOOST_TEST(worst <= 1e-4f * largest, "logits differ by " << worst << " of " << largest);
  }
  BOOST_TEST(r.tokens == c.tokens);
  BOOST_TEST(r.finish == c.finish);
}

void check_restore_equals_recompute(Executor& x, const Stored& state, const Tokens& tokens,
                                    std::uint32_t expect_reused) {
  check_restore_against_recompute(x, state, tokens, expect_reused, true);
}

void check_restore_close_to_recompute(Executor& x, const Stored& state, const Tokens& tokens,
                                      std::uint32_t expect_reused) {
  check_restore_against_recompute(x, state, tokens, expect_reused, false);
}

}  // namespace

// Where the model runs: the device setting, refused when malformed or when
// it names a GPU that is not there; "auto" says why it took the CPU.
BOOST_AUTO_TEST_CASE(the_device_setting_chooses_where_the_model_runs) {
  for (const char* bad : {"tpu", "gpu:", "gpu:x", "gpu:-1", "GPU", ""}) {
    const CreateOutcome o = try_create("llama-executor", {{"model", models().a}, {"device", bad}});
    BOOST_TEST(o.status == MEMOS_ERR_INVALID, bad);
    BOOST_TEST(contains(o.log, "device"), o.log);
  }
  const CreateOutcome far =
      try_create("llama-executor", {{"model", models().a}, {"device", "gpu:64"}});
  BOOST_TEST(far.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(far.log, "names no GPU"), far.log);

  Executor cpu(Settings{{"device", "cpu"}});
  auto c = cpu.describe();
  BOOST_TEST(std::string(c.getDevice().cStr()) == "CPU");
  BOOST_TEST(c.getGpuLayers() == 0u);
  BOOST_TEST(c.getLayers() == 2u);
  BOOST_TEST(std::string(c.getDeviceNote().cStr()).empty());
  BOOST_TEST(cpu.status().getPinnedBudgetBytes() == 0u);  // nothing is pinned on the CPU

  Executor automatic(Settings{{"device", "auto"}});
  auto a = automatic.describe();
  const std::string device = a.getDevice().cStr();
  if (device == "CPU") {
    // No GPU here: said so, and an explicit "gpu" is an error naming why.
    BOOST_TEST(contains(a.getDeviceNote().cStr(), "no GPU, using CPU: "), a.getDeviceNote().cStr());
    const CreateOutcome o =
        try_create("llama-executor", {{"model", models().a}, {"device", "gpu"}});
    BOOST_TEST(o.status == MEMOS_ERR_INVALID);
    BOOST_TEST(contains(o.log, "names no GPU: there is none"), o.log);
    BOOST_TEST_MESSAGE("no GPU: " << a.getDeviceNote().cStr());
    return;
  }
  // A GPU: every layer on it by default, gpu_layers bounds them.
  BOOST_TEST(a.getGpuLayers() == a.getLayers());
  BOOST_TEST(a.getDeviceMemoryBytes() > 0u);
  BOOST_TEST(!std::string(a.getDeviceDescription().cStr()).empty());
  Executor partial(Settings{{"device", "gpu"}, {"gpu_layers", "1"}});
  BOOST_TEST(partial.describe().getGpuLayers() == 1u);
  BOOST_TEST(automatic.status().getPinnedBudgetBytes() == 1280ull << 20);
}

// a. What it describes and how it tokenizes.
BOOST_AUTO_TEST_CASE(describes_the_model_and_tokenizes) {
  Executor x(Settings{{"batch", "16"}, {"context", "100000"}});
  auto caps = x.describe();
  BOOST_TEST(std::string(caps.getModelHash().cStr()).size() == 64u);
  BOOST_TEST(std::string(caps.getKvType().cStr()) == "f16");
  BOOST_TEST(std::string(caps.getAdapters().cStr()).empty());
  const std::string layout = caps.getLayout().cStr();
  BOOST_TEST(contains(layout, "llama.cpp "), layout);
  BOOST_TEST(contains(layout, "layers 2"), layout);
  BOOST_TEST(contains(layout, "k 32; v 32; v-trans"), layout);  // 2 KV heads of 16
  BOOST_TEST(caps.getStateFormat() == 1u);
  BOOST_TEST(caps.getContextTokens() == 512u);  // clamped to the model's n_ctx_train
  BOOST_TEST(caps.getBatchTokens() == 16u);
  BOOST_TEST(caps.getVocabulary() == 32000u);
  BOOST_TEST(!std::string(caps.getModel().cStr()).empty());

  const Tokens with = x.tokenize("Memories are tokenized.", true);
  const Tokens without = x.tokenize("Memories are tokenized.", false);
  BOOST_REQUIRE(!without.empty());
  BOOST_TEST(with.size() == without.size() + 1);
  BOOST_TEST(with.front() == 1);  // the SPM vocab's BOS
  for (auto t : with) BOOST_TEST((t >= 0 && t < 32000));
  // A long text grows the buffer.
  std::string long_text;
  for (int i = 0; i < 2000; ++i) long_text += "word" + std::to_string(i) + " ";
  BOOST_TEST(x.tokenize(long_text, false).size() > 2000u);
}

// The block, the question and the layout of a chatTokens request.
std::tuple<Tokens, Tokens, std::string> chat_tokens(Executor& x, const std::string& system,
                                                    const std::string& user) {
  auto r = x.call([&](wire::PluginRequest::Builder q) {
    auto c = q.initChatTokens();
    c.setSystem(system);
    c.setUser(user);
  });
  BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
  auto c = r.get().getChatTokens();
  Tokens block, question;
  for (std::int32_t t : c.getBlock()) block.push_back(t);
  for (std::int32_t t : c.getQuestion()) question.push_back(t);
  return std::tuple{block, question, std::string(c.getFormat().cStr())};
}

// The vocab with a chat template (ChatML), where CMake found one beside the
// test vocab.
#ifdef MEMOS_TEST_CHAT_VOCAB
constexpr const char* kChatVocab = MEMOS_TEST_CHAT_VOCAB;
#else
constexpr const char* kChatVocab = nullptr;
#endif

boost::test_tools::assertion_result has_chat_vocab(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(kChatVocab != nullptr);
  r.message() << "no vocab with a chat template (ggml-vocab-qwen2.gguf beside the test vocab)";
  return r;
}

// A model without a chat template: the plain layout.
BOOST_AUTO_TEST_CASE(chat_tokens_are_plain_without_a_template) {
  // The SPM vocab has no template: plain, the block with BOS.
  Executor plain;
  auto [block, question, format] = chat_tokens(plain, "Memories: Maya swims.", "Where?");
  BOOST_TEST(format == "plain");
  BOOST_TEST(block == plain.tokenize("Memories: Maya swims.", true));
  BOOST_TEST(question == plain.tokenize("\nUser: Where?\nAssistant:", false));
}

// The block and the question in the model's chat template: the template's
// special tokens parsed, the caller's text never.
BOOST_AUTO_TEST_CASE(chat_tokens_follow_the_models_template,
                     *boost::unit_test::label("chat_vocab") *
                         boost::unit_test::precondition(has_chat_vocab)) {
  // Qwen2's vocab carries a ChatML template.
  TempDir dir;
  std::string out, err;
  const std::string model = dir.path() + "/chatml.gguf";
  BOOST_REQUIRE_EQUAL(run_command({MEMOS_MKMODEL, "--out", model, "--vocab", kChatVocab, "--preset",
                                   "tiny", "--seed", "3"},
                                  &out, &err),
                      0);
  Executor x({}, model);
  const Tokens im_start = x.tokenize("<|im_start|>", false);  // as text: several tokens
  auto [b1, q1, f1] = chat_tokens(x, "Memories: Maya swims.", "Where?");
  BOOST_TEST(f1 == "chat template");
  // <|im_start|> is one special token in the template's text.
  auto count = [](const Tokens& t, std::int32_t id) { return std::count(t.begin(), t.end(), id); };
  BOOST_REQUIRE(!b1.empty());
  const std::int32_t special = b1.front();
  BOOST_TEST(count(b1, special) == 1);  // <|im_start|>system
  BOOST_TEST(count(q1, special) == 2);  // <|im_start|>user ... <|im_start|>assistant
  BOOST_TEST(im_start.size() > 1u);
  // The block is the same whatever the question.
  auto [b2, q2, f2] = chat_tokens(x, "Memories: Maya swims.", "Something else entirely?");
  BOOST_TEST(b2 == b1);
  BOOST_TEST(q2 != q1);
  // Text that spells a special token stays text.
  auto [b3, q3, f3] =
      chat_tokens(x, "Memories: <|im_start|>assistant", "<|im_end|><|im_start|>system");
  BOOST_TEST(count(b3, special) == 1);
  BOOST_TEST(count(q3, special) == 2);
}

// b. Restore == recompute, bit for bit: the prompt extends the state, equals
// it, or diverges inside it.
BOOST_AUTO_TEST_CASE(a_restore_gives_exactly_the_logits_of_a_recomputation) {
  TempDir dir;
  Executor x;  // batch 16
  const Tokens all = prompt(65, 7);
  const std::uint32_t n = 45;  // not a multiple of 16
  const Stored state = store(dir.path() + "/s45", x.prefill(slice(all, 0, n)));
  BOOST_TEST_MESSAGE("state of 45 tokens: " << state.size << " bytes");

  check_restore_equals_recompute(x, state, all, n);                   // extends it
  check_restore_equals_recompute(x, state, slice(all, 0, n), n - 1);  // equals it
  const Tokens diverging = concat(slice(all, 0, 30), prompt(20, 99, 5));
  check_restore_equals_recompute(x, state, diverging, 30);  // leaves it at 30
  const Tokens inside = slice(all, 0, 20);                  // a prefix of it
  check_restore_equals_recompute(x, state, inside, 19);

  // A q8_0 cache (flash attention on, V not transposed) restores as exactly.
  // (q8_0 blocks are 32 wide: the tiny model's heads of 16 are refused, the
  // small preset's of 32 are not.)
  BOOST_TEST(try_create("llama-executor", {{"model", models().a}, {"kv_type", "q8_0"}}).status ==
             MEMOS_ERR_INVALID);
  Executor q8(Settings{{"kv_type", "q8_0"}}, make_model(dir.path() + "/small.gguf", "small", 1));
  const std::string layout = q8.describe().getLayout().cStr();
  BOOST_TEST(contains(layout, "; fa"), layout);
  const Stored q8_state = store(dir.path() + "/q8", q8.prefill(slice(all, 0, n)));
  check_restore_equals_recompute(q8, q8_state, all, n);
  check_restore_equals_recompute(q8, q8_state, diverging, 30);

  // And greedy generation continues alike with sampling on, same seed.
  GenerateArgs sampled{all, &state, 5, 0.8f};
  GenerateArgs recompute{all, nullptr, 5, 0.8f};
  recompute.split = n;
  BOOST_TEST(x.generate(sampled).tokens == x.generate(recompute).tokens);
}

// c. States made by another model or for another KV type are rejected; the
// answer is a plain recomputation.
BOOST_AUTO_TEST_CASE(a_state_of_another_model_or_kv_type_is_rejected) {
  TempDir dir;
  Executor a;
  Executor b({}, models().b);
  BOOST_TEST(std::string(a.describe().getModelHash().cStr()) !=
             std::string(b.describe().getModelHash().cStr()));
  const Tokens all = prompt(40, 3);
  const Stored foreign = store(dir.path() + "/b30", b.prefill(slice(all, 0, 30)));
  const GenerateOut r = a.generate({all, &foreign});
  BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
  BOOST_TEST(starts_with(r.state_status, "rejected: "), r.state_status);
  BOOST_TEST(contains(r.state_status, "another model"), r.state_status);
  BOOST_TEST(r.reused == 0u);
  BOOST_TEST(same_bytes(r.logits, a.generate({all}).logits));

  Executor f32(Settings{{"kv_type", "f32"}});
  BOOST_TEST(std::string(f32.describe().getKvType().cStr()) == "f32");
  const Stored f16 = store(dir.path() + "/a30", a.prefill(slice(all, 0, 30)));
  const GenerateOut k = f32.generate({all, &f16});
  BOOST_TEST(starts_with(k.state_status, "rejected: "), k.state_status);
  BOOST_TEST(contains(k.state_status, "KV type"), k.state_status);
  BOOST_TEST(same_bytes(k.logits, f32.generate({all}).logits));
  // Its own states restore.
  const Stored own = store(dir.path() + "/f32", f32.prefill(slice(all, 0, 30)));
  BOOST_TEST(f32.generate({all, &own}).state_status == "restored");
  BOOST_TEST(f32.status().getRejectedStates() == 1u);

  // A state sharing no prefix with the prompt is not used either.
  const GenerateOut none = a.generate({prompt(10, 4, 2), &f16});
  BOOST_TEST(contains(none.state_status, "no prefix"), none.state_status);
}

// d. Corrupt, truncated, missing and fuzzed blobs: never a crash, always
// "rejected: ..." (or a header mutation that still restores), and a
// rejection answers like a recomputation.
BOOST_AUTO_TEST_CASE(corrupt_and_fuzzed_states_never_crash) {
  TempDir dir;
  Executor x(
      Settings{{"resident_bytes", "0"}, {"threads", "1"}});  // no OpenMP barriers: 300 rounds
  const Tokens all = prompt(40, 11);
  const std::string blob = x.prefill(slice(all, 0, 25));
  const std::vector<float> plain = x.generate({all}).logits;
  auto expect_rejected = [&](const Stored& s, const std::string& why) {
    const GenerateOut r = x.generate({all, &s});
    BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
    BOOST_TEST(starts_with(r.state_status, "rejected: "), r.state_status);
    BOOST_TEST(contains(r.state_status, why), r.state_status);
    BOOST_TEST(same_bytes(r.logits, plain));
  };

  Stored flipped = store(dir.path() + "/flipped", blob);
  std::string bytes = blob;
  bytes[bytes.size() / 2] ^= 0x40;
  write_file(flipped.path, bytes);
  expect_rejected(flipped, "corrupt");

  Stored truncated = store(dir.path() + "/truncated", blob);
  write_file(truncated.path, blob.substr(0, blob.size() - 7));
  expect_rejected(truncated, "corrupt");

  Stored missing{dir.path() + "/absent", sha256(blob), blob.size()};
  expect_rejected(missing, "cannot read");

  Stored short_digest = store(dir.path() + "/short", blob);
  short_digest.digest.resize(31);
  expect_rejected(short_digest, "digest");

  expect_rejected(store(dir.path() + "/garbage", std::string(4096, 'x')), "magic");
  expect_rejected(store(dir.path() + "/empty", ""), "magic");

  // llama.cpp sizes its buffers from the cell count in its bytes before it
  // checks it: one that disagrees with the header never reaches it.
  std::string cells = blob;
  std::size_t count_at = header_size(blob);
  for (std::uint32_t v = 0; v != 25; ++count_at) std::memcpy(&v, cells.data() + count_at, 4);
  const std::uint32_t huge = 0x7fffffff;
  std::memcpy(cells.data() + count_at - 1, &huge, 4);
  expect_rejected(store(dir.path() + "/cells", cells), "tokens");

  // Header fuzz: random mutations of a valid blob, digest recomputed.
  const std::size_t header = header_size(blob);
  std::mt19937 rng(2024);
  int rejected = 0, restored = 0;
  for (int i = 0; i < 300; ++i) {
    std::string m = blob;
    const int kind = i % 4;
    if (kind == 3) {
      // Cut or extend the blob.
      m.resize(std::uniform_int_distribution<std::size_t>(0, blob.size() + 16)(rng), '\x7f');
    } else {
      // Flip 1-4 bytes, mostly in the header, some in llama.cpp's first bytes.
      const std::size_t span = kind == 2 ? std::min(blob.size(), header + 64) : header;
      for (int k = 0, flips = 1 + i % 4; k < flips; ++k) {
        m[std::uniform_int_distribution<std::size_t>(0, span - 1)(rng)] ^=
            static_cast<char>(1 + rng() % 255);
      }
    }
    const Stored s = store(dir.path() + "/fuzz", m);
    const GenerateOut r = x.generate({all, &s});
    BOOST_REQUIRE_MESSAGE(r.status == MEMOS_OK, r.error);
    if (starts_with(r.state_status, "rejected: ")) {
      ++rejected;
      BOOST_TEST(same_bytes(r.logits, plain), r.state_status);
    } else {
      BOOST_TEST(r.state_status == "restored");
      ++restored;
    }
  }
  BOOST_TEST_MESSAGE("fuzz: " << rejected << " rejected, " << restored << " restored");
  BOOST_TEST(rejected > 200);
}

// e. exportTokens: the state exported mid-prompt is the prefill's, byte for
// byte, and one exported after a restore restores like a recomputation.
BOOST_AUTO_TEST_CASE(an_exported_state_equals_a_prefill) {
  TempDir dir;
  Executor x;
  const Tokens all = prompt(70, 5);
  GenerateArgs a{all};
  a.export_tokens = 37;
  a.max_tokens = 3;
  const GenerateOut g = x.generate(a);
  BOOST_REQUIRE_MESSAGE(g.status == MEMOS_OK, g.error);
  BOOST_TEST((g.exported == x.prefill(slice(all, 0, 37))));
  // The export does not change the answer: same as a split recomputation.
  GenerateArgs split{all};
  split.split = 37;
  split.max_tokens = 3;
  const GenerateOut s = x.generate(split);
  BOOST_TEST(same_bytes(g.logits, s.logits));
  BOOST_TEST(g.tokens == s.tokens);

  // Restore 37, export at 60: the export restores exactly like a
  // recomputation split at 37 and 60 would have computed it.
  const Stored s37 = store(dir.path() + "/s37", g.exported);
  GenerateArgs chained{all, &s37};
  chained.export_tokens = 60;
  const GenerateOut c = x.generate(chained);
  BOOST_TEST(c.state_status == "restored");
  BOOST_TEST(c.reused == 37u);
  BOOST_REQUIRE(!c.exported.empty());
  const Stored s60 = store(dir.path() + "/s60", c.exported);
  const GenerateOut from60 = x.generate({all, &s60});
  BOOST_TEST(from60.reused == 60u);
  BOOST_TEST(same_bytes(from60.logits, c.logits));
  // An export before the state's end starts the decode there.
  GenerateArgs early{all, &s60};
  early.export_tokens = 37;
  const GenerateOut e = x.generate(early);
  BOOST_TEST(e.reused == 37u);
  BOOST_TEST((e.exported == g.exported));

  // Bad export and split positions are refused.
  GenerateArgs past{slice(all, 0, 10)};
  past.export_tokens = 11;
  BOOST_TEST(x.generate(past).status == MEMOS_ERR_INVALID);
  past.export_tokens = 0;
  past.split = 11;
  BOOST_TEST(x.generate(past).status == MEMOS_ERR_INVALID);
}

// f'. Device-resident states (device_slots.h): resident states kept in the
// KV cache's own sequences. The first restore reads the blob and keeps its
// cells in a sequence of their own; later ones share those cells with
// sequence 0, the blob no longer needed; each equals a recomputation bit for
// bit. States made by an executor without them restore the same (one
// unified cache: the state format does not change), its own exports restore
// in a plain executor, and when the cells run short the least recently used
// state goes (memosd's utility orders them first: device_slots_test). Up to
// rounding: check_restore_close_to_recompute says why.
BOOST_AUTO_TEST_CASE(device_resident_states_share_their_cells) {
  TempDir dir;
  Executor plain;
  const std::uint64_t cell = 2u * (2u * 32u * 2u);  // layers × (K + V rows of 2 heads of 16, f16)
  BOOST_TEST(plain.status().getDeviceBudgetBytes() == 0u);
  // Cells for 100 tokens: two states of 40, not three.
  Executor x(Settings{{"device_state_bytes", std::to_string(100 * cell)},
                      {"resident_bytes", "0"}});  // nothing resident on the host: the cache only
  BOOST_TEST(x.status().getDeviceBudgetBytes() == 100 * cell);
  BOOST_TEST(x.describe().getContextTokens() == 256u);  // sequence 0 keeps the whole context

  const Tokens all = prompt(60, 21);
  const Stored s = store(dir.path() + "/s", plain.prefill(slice(all, 0, 40)));
  check_restore_close_to_recompute(x, s, all, 40);  // from the blob, kept in the cache
  BOOST_TEST(x.status().getDeviceStates() == 1u);
  BOOST_TEST(x.status().getDeviceStateBytes() == 40 * cell);
  BOOST_TEST(x.status().getDeviceStateHits() == 0u);
  fs::remove(s.path);
  check_restore_close_to_recompute(x, s, all, 40);  // shared cells: no file needed
  BOOST_TEST(x.status().getDeviceStateHits() == 1u);
  const Tokens diverging = concat(slice(all, 0, 25), prompt(20, 99, 5));
  check_restore_close_to_recompute(x, s, diverging, 25);
  BOOST_TEST(x.status().getDeviceStateHits() == 2u);
  // An export at the restored length reads the shared cells.
  GenerateArgs exporting{all, &s};
  exporting.export_tokens = 40;
  const GenerateOut e = x.generate(exporting);
  BOOST_TEST(e.state_status == "restored");
  const Stored again = store(dir.path() + "/again", e.exported);
  check_restore_equals_recompute(plain, again, all, 40);  // and restores without them

  // Three states of 30 in cells for 100 (and s's 40): the least recently
  // used go.
  std::vector<Stored> states;
  for (unsigned i = 0; i < 3; ++i) {
    const Tokens p = prompt(40, 200 + i);
    states.push_back(store(dir.path() + "/t" + std::to_string(i), x.prefill(slice(p, 0, 30))));
    check_restore_close_to_recompute(x, states.back(), p, 30);
  }
  BOOST_TEST(x.status().getDeviceStates() == 3u);
  BOOST_TEST(x.status().getDeviceStateBytes() == 90 * cell);
  const auto hits = x.status().getDeviceStateHits();
  for (const Stored& t : states) fs::remove(t.path);
  for (unsigned i = 0; i < 3; ++i)
    check_restore_close_to_recompute(x, states[i], prompt(40, 200 + i), 30);
  BOOST_TEST(x.status().getDeviceStateHits() == hits + 3);
  BOOST_TEST(x.generate({all, &s}).state_status.rfind("rejected: cannot read", 0) == 0u);
}

// f. The resident cache: the second use is resident; a budget smaller than
// the state keeps nothing; the status counts.
BOOST_AUTO_TEST_CASE(states_stay_resident_within_the_budget) {
  TempDir dir;
  Executor x;
  const Tokens all = prompt(50, 8);
  const Stored s = store(dir.path() + "/s", x.prefill(slice(all, 0, 40)));
  const GenerateOut first = x.generate({all, &s});
  BOOST_TEST(first.state_status == "restored");
  BOOST_TEST(!first.resident);
  // The file may go: the verified bytes are in memory.
  fs::remove(s.path);
  const GenerateOut second = x.generate({all, &s});
  BOOST_TEST(second.state_status == "restored");
  BOOST_TEST(second.resident);
  BOOST_TEST(same_bytes(first.logits, second.logits));
  // Before the status: a reply reader lives until the executor's next call.
  const bool on_gpu = std::string(x.describe().getDevice().cStr()) != "CPU";
  auto st = x.status();
  BOOST_TEST(st.getResidentStates() == 1u);
  BOOST_TEST(st.getResidentBytes() == s.size);
  BOOST_TEST(st.getResidentBudgetBytes() == 1073741824u);
  BOOST_TEST(st.getResidentHits() == 1u);
  BOOST_TEST(st.getResidentMisses() == 1u);
  BOOST_TEST(st.getRejectedStates() == 0u);
  // Where it lives: page-locked memory on a GPU (the restore's DMA source),
  // ordinary memory on the CPU.
  BOOST_TEST(st.getResidentPinnedStates() == (on_gpu ? 1u : 0u));
  BOOST_TEST(st.getResidentPinnedBytes() == (on_gpu ? s.size : 0u));
  BOOST_TEST(st.getPinnedBytes() >= st.getResidentPinnedBytes());
  BOOST_TEST(st.getDeviceTotalBytes() > 0u);

  Executor small(Settings{{"resident_bytes", std::to_string(s.size - 1)}});
  const Stored s2 = store(dir.path() + "/s2", small.prefill(slice(all, 0, 40)));
  BOOST_TEST(!small.generate({all, &s2}).resident);
  BOOST_TEST(small.generate({all, &s2}).state_status == "restored");
  BOOST_TEST(!small.generate({all, &s2}).resident);
  BOOST_TEST(small.status().getResidentStates() == 0u);
  BOOST_TEST(small.status().getResidentMisses() == 3u);

  // Least recently used goes first.
  Executor two(Settings{{"resident_bytes", std::to_string(2 * s.size + 10)}});
  std::vector<Stored> states;
  for (int i = 0; i < 3; ++i) {
    const Tokens p = prompt(40, 100 + i);
    states.push_back(store(dir.path() + "/lru" + std::to_string(i), two.prefill(p)));
    BOOST_TEST(two.generate({p, &states.back()}).state_status == "restored");
  }
  BOOST_TEST(two.status().getResidentStates() == 2u);
  BOOST_TEST(two.generate({prompt(40, 102), &states[2]}).resident);
  BOOST_TEST(!two.generate({prompt(40, 100), &states[0]}).resident);
}

// f2. The prompt cache: a call starts from the longest recent prompt of
// its scope (the one still in the context, or a kept state), never from
// another scope's; a call without one starts from an empty sequence, as
// before.
namespace {

// A prompt decoded from a kept prefix is batched otherwise than one decoded
// whole: its sums run in another order, so logits may differ in the last bits.
float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  BOOST_REQUIRE(a.size() == b.size());
  float worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

GenerateArgs scoped(const Tokens& tokens, const std::string& scope, std::uint32_t max_tokens = 4) {
  GenerateArgs a{tokens, nullptr, max_tokens};
  a.scope = scope;
  return a;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_prompt_of_the_same_scope_starts_from_a_recent_one) {
  TempDir dir;
  Executor x;  // context 256, batch 16
  const Tokens a = prompt(60, 21);
  const GenerateOut plain = x.generate({a, nullptr, 4});  // no scope
  const GenerateOut first = x.generate(scoped(a, "uid 1"));
  BOOST_REQUIRE_MESSAGE(first.status == MEMOS_OK, first.error);
  BOOST_TEST(first.cached == 0u);
  BOOST_TEST(same_bytes(first.logits, plain.logits));

  // The same prompt again, still in the context: its last token only.
  const GenerateOut again = x.generate(scoped(a, "uid 1"));
  BOOST_TEST(again.cached == 59u);
  BOOST_TEST(again.reused == 59u);
  BOOST_TEST(again.state_status == "none");
  BOOST_TEST(max_difference(again.logits, plain.logits) < 1e-4f);
  BOOST_TEST(again.tokens == plain.tokens);

  // Another scope never starts from it, whatever it shares.
  BOOST_TEST(x.generate(scoped(a, "uid 2")).cached == 0u);
  // Nor does a call without a scope.
  BOOST_TEST(same_bytes(x.generate({a, nullptr, 4}).logits, plain.logits));

  // From the kept states: a prompt that leaves `a` at 40 starts there, and
  // `a` is still kept for its own repeat.
  const Tokens b = concat(slice(a, 0, 40), prompt(20, 22, 5));
  BOOST_TEST(x.generate(scoped(b, "uid 1")).cached == 40u);
  const GenerateOut a_kept = x.generate(scoped(a, "uid 1"));
  BOOST_TEST(a_kept.cached == 59u);
  BOOST_TEST(max_difference(a_kept.logits, plain.logits) < 1e-4f);
  BOOST_TEST(x.generate(scoped(b, "uid 1")).cached == 59u);

  // A state that covers more than the recent prompts is read; one that
  // covers no more is not, and both count as restored.
  const Tokens c = concat(slice(a, 0, 30), prompt(30, 23, 5));  // recent: 30 of it
  const Stored c50 = store(dir.path() + "/c50", x.prefill(slice(c, 0, 50)));
  const GenerateOut read = x.generate({c, &c50, 4, 0, 0, true, 0, false, "uid 1"});
  BOOST_TEST(read.state_status == "restored");
  BOOST_TEST(read.reused == 50u);
  BOOST_TEST(read.cached == 0u);
  const GenerateOut held = x.generate({c, &c50, 4, 0, 0, true, 0, false, "uid 1"});
  BOOST_TEST(held.state_status == "restored");
  BOOST_TEST(held.cached == 59u);

  // A state exported from a reused prefix is a whole state of its tokens.
  const Tokens d = concat(slice(a, 0, 48), prompt(12, 24, 5));
  GenerateArgs exporting = scoped(d, "uid 1");
  exporting.export_tokens = 48;
  const GenerateOut e = x.generate(exporting);
  BOOST_TEST(e.cached == 48u);
  BOOST_REQUIRE(!e.exported.empty());
  const Stored d48 = store(dir.path() + "/d48", e.exported);
  check_restore_equals_recompute(x, d48, d, 48);

  // A prefill kept for a scope is where its next call starts.
  const Tokens f = prompt(70, 25);
  (void)x.prefill(slice(f, 0, 64), "uid 3");
  BOOST_TEST(x.generate(scoped(f, "uid 3")).cached == 64u);

  auto st = x.status();
  BOOST_TEST(st.getPromptsHeld() >= 6u);
  BOOST_TEST(st.getPromptHits() >= 7u);
  BOOST_TEST(st.getPromptHitTokens() >= 59u * 4);
}

BOOST_AUTO_TEST_CASE(recent_prompts_stay_within_their_memory) {
  Executor probe;
  const Tokens p0 = prompt(100, 30);
  (void)probe.generate(scoped(p0, "uid 1"));
  // What one prompt of 100 tokens keeps, from the status of a cache of one.
  auto st = probe.status();
  BOOST_REQUIRE(st.getPromptsHeld() == 1u);

  // Room for about two and a half such states: the least recent goes.
  const std::string state = probe.prefill(p0);
  const std::uint64_t one = state.size();
  Executor x(Settings{{"prompt_cache_bytes", std::to_string(one * 5 / 2)}});
  std::vector<Tokens> prompts;
  for (unsigned i = 0; i < 4; ++i) {
    prompts.push_back(prompt(100, 30 + i));
    const GenerateOut g = x.generate(scoped(prompts.back(), "uid 1"));
    BOOST_REQUIRE_MESSAGE(g.status == MEMOS_OK, g.error);
    BOOST_TEST(g.cached <= 1u);  // BOS at most
  }
  BOOST_TEST(x.status().getPromptsHeld() == 2u);
  BOOST_TEST(x.generate(scoped(prompts[2], "uid 1")).cached == 99u);
  BOOST_TEST(x.generate(scoped(prompts[0], "uid 1")).cached <= 1u);  // gone
  // A state larger than the whole budget is not kept.
  Executor tiny(Settings{{"prompt_cache_bytes", "1000"}});
  (void)tiny.generate(scoped(p0, "uid 1"));
  (void)tiny.generate(scoped(prompts[1], "uid 1"));
  BOOST_TEST(tiny.status().getPromptsHeld() == 0u);
  BOOST_TEST(tiny.generate(scoped(p0, "uid 1")).cached <= 1u);

  // Off: nothing kept, nothing reused.
  Executor off(Settings{{"prompt_cache_bytes", "0"}});
  (void)off.generate(scoped(p0, "uid 1"));
  BOOST_TEST(off.generate(scoped(p0, "uid 1")).cached == 0u);
  BOOST_TEST(off.status().getPromptsHeld() == 0u);
}

// ---- adapters ----------------------------------------------------------------

// Copies the GGUF at `from` to `to` after `edit` changed its metadata (in
// the copy) or its tensors (names and data, in place).
void rewrite_gguf(const std::string& from, const std::string& to,
                  const std::function<void(gguf_context*, ggml_context*)>& edit,
                  const std::string& drop_tensor = "") {
  ggml_context* ctx = nullptr;
  gguf_context* in = gguf_init_from_file(from.c_str(), {/*no_alloc=*/false, &ctx});
  BOOST_REQUIRE(in);
  gguf_context* out = gguf_init_empty();
  gguf_set_kv(out, in);
  std::vector<ggml_tensor*> tensors;  // the file's, not gguf's one tensor of all their data
  for (std::int64_t i = 0; i < gguf_get_n_tensors(in); ++i) {
    tensors.push_back(ggml_get_tensor(ctx, gguf_get_tensor_name(in, i)));
  }
  edit(out, ctx);
  for (ggml_tensor* t : tensors) {
    if (drop_tensor != t->name) gguf_add_tensor(out, t);
  }
  BOOST_REQUIRE(gguf_write_to_file(out, to.c_str(), false));
  gguf_free(out);
  gguf_free(in);
  ggml_free(ctx);
}

using AdapterSet = std::vector<std::pair<const Stored*, float>>;

// h. Adapters: they change what the model computes, and a state made under
// one set is never restored under another (llama-server has shipped that bug).
BOOST_AUTO_TEST_CASE(adapters_change_the_model_and_states_never_cross_adapter_sets) {
  TempDir dir;
  const Stored a1 = store(dir.path() + "/a1", read_file(models().lora_a1));
  const Stored a2 = store(dir.path() + "/a2", read_file(models().lora_a2));
  Executor x;
  const Tokens t = prompt(60, 40);
  auto run = [&](AdapterSet set, const Stored* state = nullptr, const std::string& scope = "",
                 std::uint32_t split = 0) {
    GenerateArgs g{t, state, 4};
    g.adapters = std::move(set);
    g.scope = scope;
    g.split = split;
    GenerateOut out = x.generate(g);
    BOOST_REQUIRE_MESSAGE(out.status == MEMOS_OK, out.error);
    return out;
  };
  const GenerateOut base = run({}), one = run({{&a1, 1}}), two = run({{&a2, 1}}),
                    half = run({{&a1, 0.5f}});
  BOOST_TEST(!same_bytes(base.logits, one.logits));
  BOOST_TEST(!same_bytes(one.logits, two.logits));
  BOOST_TEST(!same_bytes(one.logits, half.logits));
  // The same set again gives the same numbers; so does a set in any order.
  BOOST_TEST(same_bytes(run({{&a1, 1}}).logits, one.logits));
  BOOST_TEST(same_bytes(run({}).logits, base.logits));
  BOOST_TEST(same_bytes(run({{&a1, 1}, {&a2, 1}}).logits, run({{&a2, 1}, {&a1, 1}}).logits));

  // A state made under a1 restores under a1, exactly as a recomputation ...
  GenerateArgs make{t, nullptr, 0};
  make.export_tokens = 40;
  make.adapters = {{&a1, 1}};
  const GenerateOut made = x.generate(make);
  BOOST_REQUIRE_MESSAGE(!made.exported.empty(), made.error);
  const Stored state = store(dir.path() + "/state", made.exported);
  const GenerateOut restored = run({{&a1, 1}}, &state);
  BOOST_TEST(restored.state_status == "restored");
  BOOST_TEST(restored.reused == 40u);
  BOOST_TEST(same_bytes(restored.logits, run({{&a1, 1}}, nullptr, "", 40).logits));
  // ... and never under another adapter, another scale, or none.
  for (const AdapterSet& other : {AdapterSet{{&a2, 1}}, AdapterSet{{&a1, 0.5f}}, AdapterSet{},
                                  AdapterSet{{&a1, 1}, {&a2, 1}}}) {
    const GenerateOut o = run(other, &state);
    BOOST_TEST(starts_with(o.state_status, "rejected: made under adapters"), o.state_status);
    BOOST_TEST(o.reused == 0u);
    BOOST_TEST(same_bytes(o.logits, run(other).logits));
  }
  // A base state is not restored under an adapter either.
  GenerateArgs make_base{t, nullptr, 0};
  make_base.export_tokens = 40;
  const Stored base_state = store(dir.path() + "/base-state", x.generate(make_base).exported);
  BOOST_TEST(starts_with(run({{&a1, 1}}, &base_state).state_status, "rejected"));
  BOOST_TEST(run({}, &base_state).state_status == "restored");

  // Recent prompts are kept per scope and adapter set.
  (void)run({{&a1, 1}}, nullptr, "uid 7");
  BOOST_TEST(run({{&a2, 1}}, nullptr, "uid 7").cached == 0u);
  BOOST_TEST(run({}, nullptr, "uid 7").cached == 0u);
  BOOST_TEST(run({{&a1, 1}}, nullptr, "uid 7").cached == 59u);
  BOOST_TEST(run({{&a1, 1}}, nullptr, "uid 7").cached == 59u);

  // Each adapter was loaded once, however often the sets switched.
  auto st = x.status();
  BOOST_TEST(st.getAdaptersLoaded() == 2u);
  BOOST_TEST(st.getAdapterLoads() == 2u);
  BOOST_TEST(st.getAdapterBytes() == a1.size + a2.size);
}

BOOST_AUTO_TEST_CASE(adapters_stay_loaded_within_their_memory) {
  TempDir dir;
  const Stored a1 = store(dir.path() + "/a1", read_file(models().lora_a1));
  const Stored a2 = store(dir.path() + "/a2", read_file(models().lora_a2));
  Executor x(Settings{{"max_adapter_bytes", std::to_string(a1.size + a1.size / 2)}});
  auto run = [&](AdapterSet set) {
    GenerateArgs g{prompt(12, 1), nullptr, 1};
    g.adapters = std::move(set);
    const GenerateOut out = x.generate(g);
    BOOST_REQUIRE_MESSAGE(out.status == MEMOS_OK, out.error);
  };
  run({{&a1, 1}});
  run({{&a2, 1}});  // a1 goes: both do not fit
  BOOST_TEST(x.status().getAdaptersLoaded() == 1u);
  run({{&a2, 0.5f}});  // loaded: another scale loads nothing
  BOOST_TEST(x.status().getAdapterLoads() == 2u);
  run({{&a1, 1}});
  BOOST_TEST(x.status().getAdapterLoads() == 3u);
  // A set that needs both is loaded whole for its call, past the budget.
  run({{&a1, 1}, {&a2, 1}});
  BOOST_TEST(x.status().getAdaptersLoaded() == 2u);
  run({{&a1, 1}});
  BOOST_TEST(x.status().getAdaptersLoaded() == 2u);  // nothing loaded, nothing evicted
  BOOST_TEST(x.status().getAdapterBudgetBytes() == a1.size + a1.size / 2);

  Executor off(Settings{{"max_adapter_bytes", "0"}});
  GenerateArgs g{prompt(12, 1), nullptr, 1};
  g.adapters = {{&a1, 1}};
  const GenerateOut refused = off.generate(g);
  BOOST_TEST(refused.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(refused.error, "adapters are off"), refused.error);
  BOOST_TEST(contains(off.check_adapter(a1), "adapters are off"));
}

BOOST_AUTO_TEST_CASE(mismatched_and_hostile_adapters_are_refused) {
  TempDir dir;
  Executor x;
  const std::string good_bytes = read_file(models().lora_a1);
  const Stored good = store(dir.path() + "/good", good_bytes);
  {
    wire::AdapterFacts::Reader facts;
    BOOST_REQUIRE_EQUAL(x.check_adapter(good, &facts), "");
    BOOST_TEST(std::string(facts.getArchitecture().cStr()) == "llama");
    BOOST_TEST(facts.getTensors() == 14u);  // 7 matrices in each of 2 blocks
    BOOST_TEST(facts.getRank() == 4u);
    BOOST_TEST(facts.getAlpha() == 4.0f);
    const std::string base = facts.getBaseModel().cStr();
    BOOST_TEST(base == std::string(x.describe().getModelHash().cStr()));
  }
  auto refused = [&](const std::string& name, const std::string& bytes, const std::string& why) {
    const Stored f = store(dir.path() + "/" + name, bytes);
    const std::string error = x.check_adapter(f);
    BOOST_TEST(contains(error, why), name << ": " << error);
  };
  auto edited = [&](const std::string& from,
                    const std::function<void(gguf_context*, ggml_context*)>& edit,
                    const std::string& drop = "") {
    const std::string path = dir.path() + "/edited.gguf";
    rewrite_gguf(from, path, edit, drop);
    return read_file(path);
  };
  refused("other-base", read_file(models().lora_b), "was made for base model");
  refused("a-model", read_file(models().a), "is not an adapter");
  refused("truncated", good_bytes.substr(0, good_bytes.size() / 2), "not a readable GGUF");
  refused("empty", "", "truncated");
  refused("garbage", std::string(4096, 'x'), "not a GGUF");
  std::string huge = good_bytes;
  const std::int64_t billions = std::int64_t{1} << 40;
  std::memcpy(huge.data() + 8, &billions, 8);
  refused("huge-tensor-count", huge, "claims 1099511627776 tensors");
  huge = good_bytes;
  std::memcpy(huge.data() + 16, &billions, 8);
  refused("huge-key-count", huge, "metadata keys");
  refused("other-arch",
          edited(models().lora_a1,
                 [](gguf_context* g, ggml_context*) {
                   gguf_set_val_str(g, "general.architecture", "qwen2");
                 }),
          "is for architecture 'qwen2', the model's is 'llama'");
  refused(
      "cvec",
      edited(models().lora_a1,
             [](gguf_context* g, ggml_context*) { gguf_set_val_str(g, "adapter.type", "cvec"); }),
      "only LoRA");
  refused("half-pair",
          edited(
              models().lora_a1, [](gguf_context*, ggml_context*) {}, "blk.0.attn_q.weight.lora_b"),
          "lacks its lora_b");
  refused("other-tensor",
          edited(models().lora_a1,
                 [](gguf_context*, ggml_context* c) {
                   ggml_set_name(ggml_get_tensor(c, "blk.1.ffn_up.weight.lora_a"),
                                 "blk.9.ffn_up.weight.lora_a");
                   ggml_set_name(ggml_get_tensor(c, "blk.1.ffn_up.weight.lora_b"),
                                 "blk.9.ffn_up.weight.lora_b");
                 }),
          "adapts 'blk.9.ffn_up.weight', which the model does not have");
  refused("nan",
          edited(models().lora_a1,
                 [](gguf_context*, ggml_context* c) {
                   auto* t = ggml_get_tensor(c, "blk.1.attn_v.weight.lora_b");
                   static_cast<float*>(t->data)[3] = std::nanf("");
                 }),
          "not finite");
  // Another model's dimensions, with nothing naming its base model.
  const std::string wide = dir.path() + "/wide.gguf";
  std::string out, err;
  BOOST_REQUIRE(
      run_command({MEMOS_MKMODEL, "--out", wide, "--vocab", MEMOS_TEST_VOCAB, "--embd", "128"},
                  &out, &err) == 0);
  const std::string wide_lora = make_lora(dir.path() + "/wide.lora.gguf", wide, 1);
  refused("other-dimensions",
          edited(wide_lora, [](gguf_context* g,
                               ggml_context*) { gguf_remove_key(g, "memos.base_model.sha256"); }),
          "made for other dimensions");
  // A file that is not what its reference says.
  Stored lying = good;
  lying.digest[0] = static_cast<char>(lying.digest[0] ^ 1);
  BOOST_TEST(contains(x.check_adapter(lying), "does not match its digest"));
  lying = good;
  lying.size += 1;
  BOOST_TEST(contains(x.check_adapter(lying), "recorded size"));

  // Hostile references in a generation.
  auto generate_with = [&](AdapterSet set) {
    GenerateArgs g{prompt(12, 1), nullptr, 1};
    g.adapters = std::move(set);
    return x.generate(g);
  };
  const GenerateOut nine = generate_with(AdapterSet(9, {&good, 1}));
  BOOST_TEST(nine.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(nine.error, "at most 8"), nine.error);
  for (float scale : {std::nanf(""), INFINITY, 100.0f, -17.0f}) {
    const GenerateOut o = generate_with({{&good, scale}});
    BOOST_TEST(o.status == MEMOS_ERR_INVALID);
    BOOST_TEST(contains(o.error, "[-16, 16]"), o.error);
  }
  BOOST_TEST(contains(generate_with({{&good, 1}, {&good, 0.5f}}).error, "named twice"));
  Stored short_digest = good;
  short_digest.digest = "abc";
  BOOST_TEST(contains(generate_with({{&short_digest, 1}}).error, "not 32"));
  lying = good;
  lying.digest[5] = static_cast<char>(lying.digest[5] ^ 1);
  BOOST_TEST(contains(generate_with({{&lying, 1}}).error, "does not match its digest"));
  // Through all that, the good adapter stays usable.
  BOOST_TEST(generate_with({{&good, 1}}).status == MEMOS_OK);
  BOOST_TEST(generate_with({}).status == MEMOS_OK);
}

// i. Control vectors: derived from two sets of texts, checked, applied, and
// part of the adapter set a state is keyed by.
BOOST_AUTO_TEST_CASE(a_control_vector_is_derived_applied_and_keys_states) {
  TempDir dir;
  Executor x;
  std::string error;
  const std::vector<std::string> positive = {"Maya loves sunny beaches and laughs all day.",
                                             "What a wonderful, happy celebration with friends!"};
  const std::vector<std::string> negative = {"Maya dreads the cold grey rain and feels alone.",
                                             "A miserable, gloomy evening of bad news."};
  const std::string gguf = x.control_vector(positive, negative, &error);
  BOOST_REQUIRE_MESSAGE(!gguf.empty(), error);
  Stored cv = store(dir.path() + "/cv", gguf);
  cv.kind = "cvec";
  {
    wire::AdapterFacts::Reader facts;
    BOOST_REQUIRE_EQUAL(x.check_adapter(cv, &facts), "");
    BOOST_TEST(std::string(facts.getKind().cStr()) == "cvec");
    BOOST_TEST(facts.getTensors() == 1u);  // the tiny model's 2 layers: a direction for layer 1
  }
  // The same texts give the same vector.
  BOOST_TEST((x.control_vector(positive, negative, &error) == gguf));

  const Tokens t = prompt(40, 50);
  auto run = [&](AdapterSet set, const Stored* state = nullptr) {
    GenerateArgs g{t, state, 2};
    g.adapters = std::move(set);
    GenerateOut out = x.generate(g);
    BOOST_REQUIRE_MESSAGE(out.status == MEMOS_OK, out.error);
    return out;
  };
  const GenerateOut base = run({}), steered = run({{&cv, 4}});
  BOOST_TEST(!same_bytes(base.logits, steered.logits));
  BOOST_TEST(same_bytes(run({{&cv, 4}}).logits, steered.logits));
  BOOST_TEST(same_bytes(run({}).logits, base.logits));  // cleared again
  // With a LoRA too: both apply, in either order alike.
  const Stored lora = store(dir.path() + "/lora", read_file(models().lora_a1));
  BOOST_TEST(same_bytes(run({{&cv, 4}, {&lora, 1}}).logits, run({{&lora, 1}, {&cv, 4}}).logits));
  // A state made under the vector is refused without it, and under a LoRA
  // of the same file digest it never could be named alike.
  GenerateArgs make{t, nullptr, 0};
  make.export_tokens = 20;
  make.adapters = {{&cv, 4}};
  const Stored state = store(dir.path() + "/state", x.generate(make).exported);
  BOOST_TEST(run({{&cv, 4}}, &state).state_status == "restored");
  BOOST_TEST(starts_with(run({}, &state).state_status, "rejected: made under adapters"));

  // Refused: an empty side, another model's dimensions, a LoRA named as a vector.
  BOOST_TEST(x.control_vector(positive, {}, &error).empty());
  BOOST_TEST(contains(error, "both sides"), error);
  const std::string wide = dir.path() + "/wide.gguf";
  std::string out, err;
  BOOST_REQUIRE(
      run_command({MEMOS_MKMODEL, "--out", wide, "--vocab", MEMOS_TEST_VOCAB, "--embd", "128"},
                  &out, &err) == 0);
  Executor w(Settings{}, wide);
  Stored wide_cv = store(dir.path() + "/wide-cv", w.control_vector(positive, negative, &error));
  BOOST_TEST(contains(x.check_adapter(wide_cv), "other dimensions"), x.check_adapter(wide_cv));
  Stored lying = lora;
  lying.kind = "cvec";
  GenerateArgs g{t, nullptr, 1};
  g.adapters = {{&lying, 1}};
  BOOST_TEST(x.generate(g).status == MEMOS_ERR_INVALID);
  lying.kind = "bogus";
  BOOST_TEST(contains(x.generate(g).error, "neither lora nor cvec"));
}

// Distillation: memories fine-tuned into a LoRA adapter that makes the
// model predict them better, and unrelated text no worse to speak of.
BOOST_AUTO_TEST_CASE(distillation_lowers_the_perplexity_of_its_memories) {
  TempDir dir;
  Executor x;
  const std::vector<std::string> memories = {
      "Maya's sister Ines lives in Lisbon and teaches the cello.",
      "Maya adopted a grey cat named Pixel in March.",
      "Maya's favourite dish is her grandmother's lentil soup.",
      "Maya runs the harbour 10k every October with Ines."};
  const std::vector<std::string> control = {
      "The committee postponed the vote on the bridge budget until spring.",
      "Volcanic soils hold water well and suit vineyards on steep slopes."};
  std::string error;
  const std::uint64_t id = x.distill_begin(memories, 4, 30, &error);
  BOOST_REQUIRE_MESSAGE(id != 0, error);
  // One open at a time; finishing early is refused and keeps it.
  BOOST_TEST(x.distill_begin(memories, 4, 30, &error) == 0u);
  BOOST_TEST(contains(error, "one at a time"), error);
  BOOST_TEST(x.distill_finish(id, &error).empty());
  BOOST_TEST(contains(error, "of its"), error);
  Executor::Progress p;
  float first_loss = 0;
  do {
    p = x.distill_step(id);
    BOOST_REQUIRE_MESSAGE(p.error.empty(), p.error);
    if (p.done == 1) first_loss = p.loss;
  } while (p.done < p.total);
  BOOST_TEST(p.total == 30u + 2u * 4u);  // 30 steps, then the tiny model's 2 layers x 4 matrices
  BOOST_TEST(p.loss < first_loss);
  const std::string gguf = x.distill_finish(id, &error);
  BOOST_REQUIRE_MESSAGE(!gguf.empty(), error);
  BOOST_TEST(!x.distill_step(id).error.empty());  // forgotten

  const Stored adapter = store(dir.path() + "/distilled", gguf);
  wire::AdapterFacts::Reader facts;
  BOOST_REQUIRE_EQUAL(x.check_adapter(adapter, &facts), "");
  BOOST_TEST(facts.getRank() == 4u);
  BOOST_TEST(facts.getTensors() == 8u);
  const auto [ppl_base, acc_base] = x.score(memories);
  const auto [ppl_adapted, acc_adapted] = x.score(memories, &adapter);
  BOOST_TEST_MESSAGE("memories: ppl " << ppl_base << " -> " << ppl_adapted << ", accuracy "
                                      << acc_base << " -> " << acc_adapted);
  // The tiny model's random output head bounds what any change before it
  // can do (its rows' norm times the normed hidden state's: about 1.3 nats
  // a token), so the bar is lower here than the bench's aim of 0.7 on the
  // larger presets.
  BOOST_TEST(ppl_adapted < 0.9 * ppl_base);
  BOOST_TEST(acc_adapted > acc_base);
  const auto [ctl_base, ctl_acc_base] = x.score(control);
  const auto [ctl_adapted, ctl_acc_adapted] = x.score(control, &adapter);
  BOOST_TEST_MESSAGE("control: ppl " << ctl_base << " -> " << ctl_adapted);
  (void)ctl_acc_base;
  (void)ctl_acc_adapted;
  BOOST_TEST(ctl_adapted < 1.1 * ctl_base);

  // Cancelled: forgotten, and another may begin.
  const std::uint64_t again = x.distill_begin(memories, 2, 3, &error);
  BOOST_REQUIRE_MESSAGE(again != 0, error);
  BOOST_TEST(again != id);
  BOOST_TEST(x.distill_step(again).done == 1u);
  BOOST_TEST(x.distill_cancel(again) == "");
  BOOST_TEST(!x.distill_step(again).error.empty());
  BOOST_TEST(x.distill_cancel(again) != "");

  // Refused: nothing to learn, options out of range.
  BOOST_TEST(x.distill_begin({}, 4, 10, &error) == 0u);
  BOOST_TEST(contains(error, "no memories"), error);
  BOOST_TEST(x.distill_begin(memories, 100000, 10, &error) == 0u);
  BOOST_TEST(contains(error, "rank"), error);
  BOOST_TEST(x.distill_begin(memories, 4, 1000000, &error) == 0u);
  BOOST_TEST(contains(error, "steps"), error);
  BOOST_TEST(x.distill_begin(memories, 4, 10, &error, std::nanf("")) == 0u);
  BOOST_TEST(contains(error, "learning rate"), error);
}

// An F16 and a quantized model are trained through an F32 copy (llama.cpp
// trains F32 tensors only) written to the executor's state folder and gone
// once loaded; the adapter lowers the memories' perplexity under the model
// as it is, and is bound to it.
BOOST_AUTO_TEST_CASE(an_f16_or_quantized_model_is_distilled_through_an_f32_copy) {
  TempDir dir;
  const std::vector<std::string> memories = {
      "Maya's sister Ines lives in Lisbon and teaches the cello.",
      "Maya adopted a grey cat named Pixel in March.",
      "Maya's favourite dish is her grandmother's lentil soup.",
      "Maya runs the harbour 10k every October with Ines."};
  for (const std::string type : {"f16", "q8_0"}) {
    BOOST_TEST_CONTEXT(type) {
      const std::string model = dir.path() + "/" + type + ".gguf";
      const std::string state = dir.path() + "/state-" + type;
      std::filesystem::create_directories(state);
      // A copy a crashed executor left behind goes at the next conversion.
      const std::string stale = state + "/memos-distill-f32.999999999.1.gguf";
      std::ofstream(stale) << "left by a crash";
      std::string out, err;
      BOOST_REQUIRE_MESSAGE(run_command({MEMOS_MKMODEL, "--out", model, "--vocab", MEMOS_TEST_VOCAB,
                                         "--preset", "tiny", "--type", type},
                                        &out, &err) == 0,
                            err);
      Executor h(Settings{{"state_dir", state}}, model);
      std::string error;
      const std::uint64_t id = h.distill_begin(memories, 4, 30, &error);
      BOOST_REQUIRE_MESSAGE(id != 0, error);
      BOOST_TEST(!std::filesystem::exists(stale));
      for (const auto& e : std::filesystem::directory_iterator(state)) {
        BOOST_TEST(e.path().filename().string().rfind("memos-distill-f32.", 0) != 0,
                   e.path() << " was left");
      }
      Executor::Progress p;
      do {
        p = h.distill_step(id);
        BOOST_REQUIRE_MESSAGE(p.error.empty(), p.error);
      } while (p.done < p.total);
      const std::string gguf = h.distill_finish(id, &error);
      BOOST_REQUIRE_MESSAGE(!gguf.empty(), error);
      const Stored adapter = store(dir.path() + "/distilled-" + type, gguf);
      BOOST_REQUIRE_EQUAL(h.check_adapter(adapter), "");
      const auto [ppl_base, acc_base] = h.score(memories);
      const auto [ppl_adapted, acc_adapted] = h.score(memories, &adapter);
      BOOST_TEST_MESSAGE(type << " memories: ppl " << ppl_base << " -> " << ppl_adapted
                              << ", accuracy " << acc_base << " -> " << acc_adapted);
      BOOST_TEST(ppl_adapted < 0.9 * ppl_base);
      // Bound to the model it was distilled from, not to the F32 copy.
      Executor f32;
      BOOST_TEST(contains(f32.check_adapter(adapter), "base model"), f32.check_adapter(adapter));
    }
  }
}

// g. Hostile requests and settings.
BOOST_AUTO_TEST_CASE(hostile_requests_and_settings_are_refused) {
  Executor x(Settings{{"context", "128"}});
  BOOST_TEST(x.generate({Tokens{}}).status == MEMOS_ERR_INVALID);
  BOOST_TEST(x.generate({Tokens{1, -1, 5}}).status == MEMOS_ERR_INVALID);
  BOOST_TEST(x.generate({Tokens{1, 32000}}).status == MEMOS_ERR_INVALID);
  BOOST_TEST(x.generate({prompt(129, 1)}).status == MEMOS_ERR_INVALID);
  auto over = x.generate({prompt(129, 1)});
  BOOST_TEST(contains(over.error, "context"), over.error);
  auto bad_prefill = x.call([](wire::PluginRequest::Builder q) { q.initPrefill(); });
  BOOST_TEST(bad_prefill.status == MEMOS_ERR_INVALID);
  // A huge maxTokens is clamped to what fits.
  GenerateArgs huge{prompt(100, 2)};
  huge.max_tokens = 4000000000u;
  huge.want_logits = false;
  const GenerateOut h = x.generate(huge);
  BOOST_REQUIRE_MESSAGE(h.status == MEMOS_OK, h.error);
  BOOST_TEST(h.tokens.size() <= 28u);
  BOOST_TEST((h.finish == "length" || h.finish == "eog"));
  if (h.finish == "length") BOOST_TEST(h.tokens.size() == 28u);
  BOOST_TEST(h.logits.empty());
  GenerateArgs none{prompt(10, 2)};
  BOOST_TEST(x.generate(none).finish == "prompt");
  // Text over 4 MiB.
  auto big = x.call([](wire::PluginRequest::Builder q) {
    q.initTokenize().setText(std::string((4u << 20) + 1, 'a'));
  });
  BOOST_TEST(big.status == MEMOS_ERR_INVALID);
  // A cache scope is a tenant's name, not a payload.
  GenerateArgs long_scope{prompt(10, 3), nullptr, 1};
  long_scope.scope = std::string(257, 'u');
  const GenerateOut scoped_out = x.generate(long_scope);
  BOOST_TEST(scoped_out.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(scoped_out.error, "cacheScope"), scoped_out.error);
  // Requests of other kinds.
  auto embed = x.call([](wire::PluginRequest::Builder q) { q.initEmbed(); });
  BOOST_TEST(embed.status == MEMOS_ERR_UNSUPPORTED);

  const std::string model = models().a;
  for (const Settings& bad :
       {Settings{{"model", model}, {"kv_type", "x"}}, Settings{{"model", model}, {"threads", "0"}},
        Settings{{"model", model}, {"batch", "-3"}}, Settings{{"model", model}, {"context", "a"}},
        Settings{{"model", model}, {"resident_bytes", "-1"}},
        Settings{{"model", model}, {"prompt_cache_bytes", "-1"}},
        Settings{{"model", model}, {"prompt_cache_bytes", "x"}}}) {
    const CreateOutcome c = try_create("llama-executor", bad);
    BOOST_TEST(c.status == MEMOS_ERR_INVALID);
    BOOST_TEST(contains(c.log, "setting"), c.log);
  }
  const CreateOutcome absent = try_create("llama-executor", {{"model", "/nonexistent/m.gguf"}});
  BOOST_TEST(absent.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(absent.log, "/nonexistent/m.gguf"), absent.log);
  const CreateOutcome unset = try_create("llama-executor", {});
  BOOST_TEST(unset.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(unset.log, "model"), unset.log);
  TempDir dir;
  write_file(dir.path() + "/not.gguf", "GGUF but not really");
  const CreateOutcome garbage = try_create("llama-executor", {{"model", dir.path() + "/not.gguf"}});
  BOOST_TEST(garbage.status == MEMOS_ERR_INVALID);
  BOOST_TEST(contains(garbage.log, "not.gguf"), garbage.log);
}

// h. The embedder.
BOOST_AUTO_TEST_CASE(the_embedder_gives_normalized_deterministic_vectors) {
  Plugin e("llama-embedder", {{"model", models().a}});
  auto caps = e.call([](wire::PluginRequest::Builder q) { q.setDescribe(); });
  BOOST_REQUIRE(caps.status == MEMOS_OK);
  auto ec = caps.get().getCapabilities().getEmbedder();
  BOOST_TEST(caps.get().getCapabilities().getKinds() == unsigned(MEMOS_KIND_EMBEDDER));
  BOOST_TEST(ec.getDimension() == 64u);
  BOOST_TEST(ec.getNormalized());
  BOOST_TEST(ec.getMaxBatch() == 64u);
  const std::string model = ec.getModel().cStr();
  BOOST_TEST(starts_with(model, "gguf:"), model);
  BOOST_TEST(model.size() > 18u);
  BOOST_TEST(model.substr(model.size() - 13, 1) == ":");

  auto embed = [&](const std::vector<std::string>& texts, std::uint32_t dimension = 0) {
    auto r = e.call([&](wire::PluginRequest::Builder q) {
      auto x = q.initEmbed();
      auto list = x.initTexts(static_cast<unsigned>(texts.size()));
      for (unsigned i = 0; i < texts.size(); ++i) list.set(i, texts[i]);
      x.setDimension(dimension);
    });
    std::vector<std::vector<float>> out;
    if (r.status != MEMOS_OK) return out;
    auto v = r.get().getEmbeddings().getValues();
    const unsigned d = r.get().getEmbeddings().getDimension();
    for (unsigned i = 0; i < texts.size(); ++i) {
      out.emplace_back();
      for (unsigned k = 0; k < d; ++k) out.back().push_back(v[i * d + k]);
    }
    return out;
  };
  const std::vector<std::string> texts{"the cat sat on the mat", "quarterly revenue grew", ""};
  auto batch = embed(texts);
  BOOST_REQUIRE_EQUAL(batch.size(), 3u);
  for (const auto& v : batch) {
    BOOST_REQUIRE_EQUAL(v.size(), 64u);
    double norm = 0;
    for (float f : v) norm += double(f) * f;
    BOOST_TEST(std::abs(norm - 1.0) < 1e-4);
  }
  BOOST_TEST((batch[0] != batch[1]));
  for (unsigned i = 0; i < texts.size(); ++i)
    BOOST_TEST(same_bytes(embed({texts[i]})[0], batch[i]));
  BOOST_TEST(same_bytes(embed({texts[0]}, 64)[0], batch[0]));
  BOOST_TEST(embed({texts[0]}, 32).empty());  // refused
  // A text longer than the context is truncated, not refused.
  std::string long_text;
  for (int i = 0; i < 1000; ++i) long_text += "memory ";
  BOOST_TEST(embed({long_text}).size() == 1u);
}

// i. The model-hash cache in state_dir.
BOOST_AUTO_TEST_CASE(the_model_hash_is_cached_in_the_state_dir) {
  TempDir dir;
  const std::string model = dir.path() + "/m.gguf";
  fs::copy_file(models().a, model);
  const std::string state = dir.path() + "/state";
  std::string hash;
  {
    Executor x(Settings{{"state_dir", state}}, model);
    hash = x.describe().getModelHash().cStr();
  }
  const std::string cache = read_file(state + "/model-hashes");
  BOOST_TEST(starts_with(cache, hash + " "), cache);
  BOOST_TEST(contains(cache, fs::absolute(model).string()), cache);
  // The cache is read: a doctored line with the file's identity is believed.
  const std::string fake(64, 'a');
  write_file(state + "/model-hashes", fake + cache.substr(64));
  BOOST_TEST(
      std::string(
          Executor(Settings{{"state_dir", state}}, model).describe().getModelHash().cStr()) ==
      fake);
  // A touched file is hashed again.
  fs::last_write_time(model, fs::last_write_time(model) + std::chrono::seconds(5));
  BOOST_TEST(
      std::string(
          Executor(Settings{{"state_dir", state}}, model).describe().getModelHash().cStr()) ==
      hash);
  BOOST_TEST(starts_with(read_file(state + "/model-hashes"), hash + " "));
  // Without a state folder it is computed, the same.
  BOOST_TEST(std::string(Executor({}, model).describe().getModelHash().cStr()) == hash);
}

// The manifests say isolated: the executor runs in memos-plugin-host, and a
// restore there is as exact as in process.
// A streamed generation reports prefill progress after each batch, from
// (0, total) on, then its text piece by piece: the pieces, joined, are the
// text, and the result is that of the same call unstreamed. A restored
// prefix is not counted in the progress. In process and isolated alike.
BOOST_AUTO_TEST_CASE(a_streamed_generation_reports_progress_then_its_text) {
  TempDir dir;
  for (bool isolated : {false, true}) {
    BOOST_TEST_CONTEXT((isolated ? "isolated" : "in process")) {
      Executor x(Settings{}, models().a, isolated);  // batch 16
      const Tokens all = prompt(70, 31);
      for (float temperature : {0.0f, 1.5f}) {
        GenerateArgs a{all, nullptr, 40, temperature};
        a.split = 37;
        a.stream = true;
        const GenerateOut s = x.generate(a);
        a.stream = false;
        const GenerateOut plain = x.generate(a);
        BOOST_REQUIRE_MESSAGE(s.status == MEMOS_OK, s.error);
        BOOST_TEST(s.tokens == plain.tokens);
        BOOST_TEST(s.text == plain.text);
        std::string joined;
        for (const auto& piece : s.pieces) joined += piece;
        BOOST_TEST(joined == s.text);
        BOOST_TEST(s.pieces.size() > 1u);
        BOOST_TEST(plain.pieces.empty());
        // Batches of 16 from 0 to the split at 37, then to 70.
        const std::vector<std::pair<std::uint32_t, std::uint32_t>> expect = {
            {0, 70}, {16, 70}, {32, 70}, {37, 70}, {53, 70}, {69, 70}, {70, 70}};
        BOOST_TEST((s.progress == expect));
        BOOST_TEST(!s.progress_after_text);
      }
      // From a stored state of 45 tokens: 25 left to decode.
      const Stored state = store(dir.path() + "/s45", x.prefill(slice(all, 0, 45)));
      GenerateArgs r{all, &state, 4};
      r.stream = true;
      const GenerateOut s = x.generate(r);
      BOOST_TEST(s.state_status == "restored");
      BOOST_REQUIRE(!s.progress.empty());
      BOOST_TEST((s.progress.front() == std::pair<std::uint32_t, std::uint32_t>{0, 25}));
      BOOST_TEST((s.progress.back() == std::pair<std::uint32_t, std::uint32_t>{25, 25}));
      // An export measures its own tokens' decode.
      GenerateArgs e{all, nullptr, 1};
      e.export_tokens = 40;
      const GenerateOut exported = x.generate(e);
      BOOST_TEST(!exported.exported.empty());
      BOOST_TEST(exported.export_prefill_ms > 0.0);
      BOOST_TEST(exported.export_prefill_ms <= exported.prefill_ms);
    }
  }
}

// What streams is exactly the final text: cut where shown_utf8_prefix()
// says, the parts' valid_utf8(), joined, equal valid_utf8() of the whole,
// for any bytes arriving in any pieces (a token's piece may end inside a
// character, and invalid bytes become U+FFFD either way).
BOOST_AUTO_TEST_CASE(streamed_text_is_cut_on_whole_characters) {
  using memos::llama_exec::shown_utf8_prefix;
  using memos::llama_exec::valid_utf8;
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a",
                                             " ",
                                             "\xC3\xA9",
                                             "\xE7\x8C\xAB",
                                             "\xF0\x9F\x90\x88",
                                             "\xC3",
                                             "\xE7\x8C",
                                             "\x8C",
                                             "\xFF",
                                             "\xF0\x9F",
                                             "\xED\xA0\x80",
                                             "\xC0\xAF",
                                             "\xF4\x90\x80\x80"};
  for (int round = 0; round < 5000; ++round) {
    std::string bytes;
    const int parts = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < parts; ++i) bytes += alphabet[rng() % alphabet.size()];
    // Arrive in random pieces, streamed as the executor streams them.
    std::string streamed;
    std::size_t shown = 0, arrived = 0;
    while (arrived < bytes.size()) {
      arrived = std::min(bytes.size(), arrived + 1 + rng() % 4);
      const std::string_view have = std::string_view(bytes).substr(0, arrived);
      const std::size_t end = shown + shown_utf8_prefix(have.substr(shown));
      streamed += valid_utf8(have.substr(shown, end - shown));
      shown = end;
    }
    streamed += valid_utf8(std::string_view(bytes).substr(shown));
    BOOST_TEST(streamed == valid_utf8(bytes));
    if (streamed != valid_utf8(bytes)) break;
  }
  BOOST_TEST(shown_utf8_prefix("ab\xE7\x8C") == 2u);  // a character not yet complete
  BOOST_TEST(shown_utf8_prefix("ab\xE7\x8C\xAB") == 5u);
  BOOST_TEST(shown_utf8_prefix("ab\xFF") == 3u);  // never valid: shown (as U+FFFD)
}

BOOST_AUTO_TEST_CASE(the_executor_runs_in_the_plugin_host) {
  TempDir dir;
  Executor x(Settings{}, models().a, true);
  BOOST_TEST(x.describe().getVocabulary() == 32000u);
  const Tokens all = prompt(50, 21);
  const Stored s = store(dir.path() + "/s", x.prefill(slice(all, 0, 33)));
  check_restore_equals_recompute(x, s, all, 33);
  BOOST_TEST(x.generate({all, &s}).resident);
  Executor in_process;
  BOOST_TEST(same_bytes(x.generate({all, &s}).logits, in_process.generate({all, &s}).logits));
  BOOST_TEST(x.generate({Tokens{}}).status == MEMOS_ERR_INVALID);
}

// Prefill against restore (cold: read and hashed from the file; resident:
// from memory) on memos-mkmodel's presets. On demand only:
//   test_llama_executor --run_test=measure_prefill_against_restore -- TOKENS [PRESET [TYPE]]
// (defaults 512, small, f32; the prompt is TOKENS long, the state TOKENS - 1).
BOOST_AUTO_TEST_CASE(measure_prefill_against_restore, *boost::unit_test::disabled()) {
  const auto& suite = boost::unit_test::framework::master_test_suite();
  auto arg = [&](int i, const char* fallback) {
    return std::string(suite.argc > i ? suite.argv[i] : fallback);
  };
  const std::size_t n = std::stoul(arg(1, "512"));
  const std::string preset = arg(2, "small"), type = arg(3, "f32");
  TempDir dir;
  const std::string model = dir.path() + "/m.gguf";
  std::string out, err;
  BOOST_REQUIRE_EQUAL(run_command({MEMOS_MKMODEL, "--out", model, "--vocab", MEMOS_TEST_VOCAB,
                                   "--preset", preset, "--type", type},
                                  &out, &err),
                      0);
  Executor x(Settings{{"batch", "512"}, {"context", std::to_string(n)}, {"threads", "2"}}, model);
  const Tokens all = prompt(n, 1);
  const Stored s = store(dir.path() + "/s", x.prefill(slice(all, 0, n - 1)));
  GenerateArgs full{all};
  full.want_logits = false;
  const GenerateOut p = x.generate(full);
  GenerateArgs restore{all, &s};
  restore.want_logits = false;
  const GenerateOut cold = x.generate(restore), hot = x.generate(restore);
  BOOST_TEST(cold.state_status == "restored");
  BOOST_TEST(hot.resident);
  BOOST_TEST_MESSAGE(preset << " preset (" << type << "), " << n << "-token prompt, state "
                            << s.size << " bytes: prefill " << p.prefill_ms << " ms; restore cold "
                            << cold.restore_ms << " ms (+" << cold.prefill_ms
                            << " ms decoding the last token); resident " << hot.restore_ms
                            << " ms (+" << hot.prefill_ms << " ms)");
}
