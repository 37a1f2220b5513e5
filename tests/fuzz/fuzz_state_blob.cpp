// fuzz_state_blob — an activation state blob, as the executor reads one
// from the blob store before restoring it (plugins/llama-executor/
// state_blob.h): the header is parsed, bounds-checked, before llama.cpp
// ever sees the bytes after it.
//
// Checked: a blob is parsed or refused with a reason, whatever its bytes;
// a parsed one places llama.cpp's bytes exactly at the blob's end, and its
// header encodes back to the very bytes it was read from.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "plugins/llama-executor/state_blob.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

using namespace memos::llama_exec;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_state_blob: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    StateHeader h;
    h.model_hash.fill(0xab);
    h.kv_type = "f16";
    h.layout = "n_layer=2 n_embd=64 llama b4000";
    h.tokens = {1, 415, 5255, 2, 28705, 13};
    std::string llama(512, '\x11');
    emit("state", encode_state_header(h, llama.size()) + llama);
    h.adapters = "lora.gguf:0.5";
    h.kv_type = "q8_0";
    h.tokens.assign(64, 7);
    emit("state_with_adapters", encode_state_header(h, 16) + std::string(16, '\x22'));
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view blob(reinterpret_cast<const char*>(data), size);
  ParsedState parsed;
  std::string error = parse_state(blob, &parsed);
  if (!error.empty()) return 0;
  check(parsed.llama_size > 0 && parsed.llama_offset + parsed.llama_size == blob.size(),
        "llama.cpp's bytes are not exactly the blob's rest");
  check(
      encode_state_header(parsed.header, parsed.llama_size) == blob.substr(0, parsed.llama_offset),
      "a parsed header does not encode back to its bytes");
  return 0;
}
