// memos-mkmodel (MEMOS_MKMODEL): its tiny model loads in llama.cpp with the
// vocab file's tokenizer, decodes to finite logits, and is the same file for
// the same seed; bad options are refused.
#define BOOST_TEST_MODULE mkmodel
#include <boost/test/unit_test.hpp>

#include <gguf.h>
#include <llama.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/memosd_process.h"

using memos::testing::run_command;
using memos::testing::TempDir;

namespace {

int mkmodel(const std::string& out, std::vector<std::string> extra, std::string* err = nullptr) {
  std::vector<std::string> argv{MEMOS_MKMODEL, "--out", out, "--vocab", MEMOS_TEST_VOCAB};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string stdout_text;
  return run_command(argv, &stdout_text, err);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

uint32_t vocab_file_tokens() {
  gguf_init_params p{true, nullptr};
  gguf_context* g = gguf_init_from_file(MEMOS_TEST_VOCAB, p);
  BOOST_REQUIRE(g != nullptr);
  const int64_t key = gguf_find_key(g, "tokenizer.ggml.tokens");
  BOOST_REQUIRE(key >= 0);
  const auto n = static_cast<uint32_t>(gguf_get_arr_n(g, key));
  gguf_free(g);
  return n;
}

// llama.cpp's log shows its errors only.
void errors_only(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct Backend {
  Backend() {
    llama_log_set(errors_only, nullptr);
    llama_backend_init();
  }
  ~Backend() { llama_backend_free(); }
};

// Loads `path`, checks its shape, tokenizes and decodes a sentence; returns
// the last token's logits.
std::vector<float> decode_sentence(const std::string& path, int32_t n_embd = 64,
                                   int32_t n_layer = 2) {
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(path.c_str(), mp);
  BOOST_REQUIRE(model != nullptr);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  BOOST_TEST(static_cast<uint32_t>(llama_vocab_n_tokens(vocab)) == vocab_file_tokens());
  BOOST_TEST(llama_model_n_embd(model) == n_embd);
  BOOST_TEST(llama_model_n_layer(model) == n_layer);

  const std::string text = "Memories are tokenized by the vocab file's own tokenizer.";
  std::vector<llama_token> tokens(256);
  const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                               static_cast<int32_t>(tokens.size()), true, false);
  BOOST_REQUIRE(n > 1);
  tokens.resize(static_cast<size_t>(n));

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 256;
  cp.n_batch = 256;
  cp.n_threads = 1;
  cp.n_threads_batch = 1;
  llama_context* ctx = llama_init_from_model(model, cp);
  BOOST_REQUIRE(ctx != nullptr);
  llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int32_t>(tokens.size()));
  BOOST_REQUIRE(llama_decode(ctx, batch) == 0);
  const float* logits = llama_get_logits_ith(ctx, -1);
  BOOST_REQUIRE(logits != nullptr);
  std::vector<float> last(logits, logits + llama_vocab_n_tokens(vocab));
  llama_free(ctx);
  llama_model_free(model);
  return last;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_tiny_model_loads_tokenizes_and_decodes) {
  Backend backend;
  TempDir dir;
  const std::string path = dir.path() + "/tiny.gguf";
  std::string err;
  BOOST_REQUIRE_EQUAL(mkmodel(path, {"--preset", "tiny", "--seed", "1"}, &err), 0);
  BOOST_TEST_MESSAGE(err);
  const std::vector<float> logits = decode_sentence(path);
  bool finite = true, varied = false;
  for (float v : logits) {
    finite = finite && std::isfinite(v);
    varied = varied || v != logits.front();
  }
  BOOST_TEST(finite);
  BOOST_TEST(varied);  // random weights, not zeros
}

BOOST_AUTO_TEST_CASE(an_f16_model_decodes_too) {
  Backend backend;
  TempDir dir;
  const std::string path = dir.path() + "/tiny-f16.gguf";
  BOOST_REQUIRE_EQUAL(mkmodel(path, {"--preset", "tiny", "--type", "f16"}), 0);
  const std::vector<float> logits = decode_sentence(path);
  for (float v : logits) BOOST_REQUIRE(std::isfinite(v));
  // F16 matrices take about half the space of F32 ones.
  const std::string f32 = dir.path() + "/tiny-f32.gguf";
  BOOST_REQUIRE_EQUAL(mkmodel(f32, {"--preset", "tiny"}), 0);
  BOOST_TEST(std::filesystem::file_size(path) < std::filesystem::file_size(f32) * 3 / 4);
}

BOOST_AUTO_TEST_CASE(tied_output_weights_decode_and_take_less_space) {
  Backend backend;
  TempDir dir;
  const std::string tied = dir.path() + "/tied.gguf", separate = dir.path() + "/separate.gguf";
  BOOST_REQUIRE_EQUAL(mkmodel(tied, {"--output-weights", "tied"}), 0);
  BOOST_REQUIRE_EQUAL(mkmodel(separate, {"--output-weights", "separate"}), 0);
  for (float v : decode_sentence(tied)) BOOST_REQUIRE(std::isfinite(v));
  BOOST_TEST(std::filesystem::file_size(tied) < std::filesystem::file_size(separate) * 3 / 4);
}

// The benchmark size (about 1 GB on disk, a few seconds): on demand only,
// `test_mkmodel --run_test=a_0_5b_model_decodes`.
BOOST_AUTO_TEST_CASE(a_0_5b_model_decodes, *boost::unit_test::disabled()) {
  Backend backend;
  TempDir dir;
  const std::string path = dir.path() + "/0.5b.gguf";
  BOOST_REQUIRE_EQUAL(mkmodel(path, {"--preset", "0.5b", "--type", "f16"}), 0);
  for (float v : decode_sentence(path, 896, 24)) BOOST_REQUIRE(std::isfinite(v));
}

BOOST_AUTO_TEST_CASE(the_seed_decides_the_file) {
  TempDir dir;
  const std::string a = dir.path() + "/a.gguf", b = dir.path() + "/b.gguf",
                    c = dir.path() + "/c.gguf";
  BOOST_REQUIRE_EQUAL(mkmodel(a, {"--seed", "7"}), 0);
  BOOST_REQUIRE_EQUAL(mkmodel(b, {"--seed", "7"}), 0);
  BOOST_REQUIRE_EQUAL(mkmodel(c, {"--seed", "8"}), 0);
  const std::string fa = read_file(a), fb = read_file(b), fc = read_file(c);
  BOOST_TEST(!fa.empty());
  BOOST_TEST((fa == fb));
  BOOST_TEST(fa.size() == fc.size());
  BOOST_TEST((fa != fc));
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  TempDir dir;
  const std::string out = dir.path() + "/x.gguf";
  std::string err, stdout_text;
  BOOST_TEST(mkmodel(out, {"--preset", "huge"}, &err) == 2);
  BOOST_TEST(mkmodel(out, {"--embd", "65", "--heads", "4"}, &err) == 2);
  BOOST_TEST(err.find("multiple") != std::string::npos);
  BOOST_TEST(mkmodel(out, {"--heads", "4", "--kv-heads", "3"}, &err) == 2);
  BOOST_TEST(mkmodel(out, {"--layers", "0"}, &err) == 2);
  BOOST_TEST(mkmodel(out, {"--type", "q4"}, &err) == 2);
  BOOST_TEST(run_command({MEMOS_MKMODEL, "--vocab", MEMOS_TEST_VOCAB}, &stdout_text, &err) == 2);
  BOOST_TEST(run_command({MEMOS_MKMODEL, "--out", out, "--vocab", dir.path() + "/absent.gguf"},
                         &stdout_text, &err) == 1);
  BOOST_TEST(err.find("absent.gguf") != std::string::npos);
  BOOST_TEST(!std::filesystem::exists(out));
}

// Random LoRA adapters for a model (--lora-for): an adapter GGUF naming its
// base model, the same bytes for the same seed; the executor's tests load them.
BOOST_AUTO_TEST_CASE(a_random_lora_is_written_for_a_model) {
  TempDir dir;
  const std::string model = dir.path() + "/m.gguf";
  BOOST_REQUIRE_EQUAL(mkmodel(model, {}), 0);
  std::string out, err;
  auto lora = [&](const std::string& path, const std::string& seed, const std::string& base) {
    return run_command(
        {MEMOS_MKMODEL, "--lora-for", base, "--out", path, "--seed", seed, "--rank", "2"}, &out,
        &err);
  };
  const std::string a = dir.path() + "/a.gguf", b = dir.path() + "/b.gguf",
                    c = dir.path() + "/c.gguf";
  BOOST_REQUIRE_EQUAL(lora(a, "1", model), 0);
  BOOST_REQUIRE_EQUAL(lora(b, "1", model), 0);
  BOOST_REQUIRE_EQUAL(lora(c, "2", model), 0);
  BOOST_TEST((read_file(a) == read_file(b)));
  BOOST_TEST((read_file(a) != read_file(c)));
  gguf_context* g = gguf_init_from_file(a.c_str(), {/*no_alloc=*/true, /*ctx=*/nullptr});
  BOOST_REQUIRE(g);
  BOOST_TEST(std::string(gguf_get_val_str(g, gguf_find_key(g, "general.type"))) == "adapter");
  BOOST_TEST(std::string(gguf_get_val_str(g, gguf_find_key(g, "adapter.type"))) == "lora");
  BOOST_TEST(std::string(gguf_get_val_str(g, gguf_find_key(g, "memos.base_model.sha256"))).size() ==
             64u);
  BOOST_TEST(gguf_get_n_tensors(g) == 28);  // 7 matrices x 2 blocks, a pair each
  gguf_free(g);
  // No such model: exit 1, nothing written.
  const std::string d = dir.path() + "/d.gguf";
  BOOST_TEST(lora(d, "1", dir.path() + "/absent.gguf") == 1);
  BOOST_TEST(!std::filesystem::exists(d));
}
