// fuzz_config — memosd.conf through load_config_file() and
// validate_config(), as `memosd --config` and `--check-config` read it.
//
// Checked: a file is accepted or refused with a message, whatever its
// bytes (no exception escapes; the file's name starts each message).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "kernel/config.h"
#include "tests/fuzz/file_input.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

std::unique_ptr<memos::fuzz::FileInput> input;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    // The shipped file, every key documented, and the shapes the tests use.
    emit("dist_memosd.conf", memos::fuzz::read_source_file("dist/memosd.conf"));
    emit("small.conf",
         "socket = \"/tmp/x.sock\"\nlog_level = \"debug\"\n[ipc]\nmax_message_bytes = 65536\n"
         "[store]\nmax_text_bytes = 1024\n[search]\nembedding_dim = 512\n");
    emit("search.conf",
         "[search]\ndefault_mode = \"lexical\"\nhybrid_depth = 80\nrrf_k = 30\n"
         "dense_weight = 0.5\nlexical_weight = 2\nrecency_weight = 0.1\n"
         "recency_half_life_days = 7\nimportance_weight = 1\nmmr_lambda = 0.7\n"
         "snapshot_interval_s = 5\n[plugins]\ndense = \"d\"\nlexical = \"l\"\nhybrid = \"h\"\n");
    emit("plugin_settings.conf",
         "[plugins]\npaths = [\"/usr/lib/memosd/plugins\"]\ncall_timeout_ms = 5000\n"
         "[plugins.settings.faiss-retriever]\nhnsw_threshold = 500\nef_search = \"128\"\n"
         "[plugins.settings.xapian-retriever]\nk1 = 0.9\nflag = true\n");
    emit("executor.conf",
         "[executor]\nmodel = \"/m.gguf\"\nthreads = 2\ncontext = 2048\nbatch = 64\n"
         "kv_type = \"q8_0\"\nmax_tokens = 16\n[activation]\nchunk_tokens = 32\nresident_mb = 0\n"
         "tenant_max_mb = 10\nmax_state_mb = 5\n");
    emit("bad_type.conf", "[ipc]\nmax_message_bytes = \"big\"\nworker_threads = -1\n");
  });
  input = std::make_unique<memos::fuzz::FileInput>("memosd.conf");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = input->write(data, size);
  memos::kernel::Config config;
  std::string error = memos::kernel::load_config_file(path, &config);
  if (!error.empty()) {
    if (error.find(path) == std::string::npos) {
      std::fprintf(stderr, "fuzz_config: an error that does not name the file: %s\n",
                   error.c_str());
      std::abort();
    }
    return 0;
  }
  (void)memos::kernel::validate_config(config);
  return 0;
}
