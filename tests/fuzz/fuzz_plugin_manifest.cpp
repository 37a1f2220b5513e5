// fuzz_plugin_manifest — NAME.plugin.toml through the loader's
// read_manifest(), as memosd reads every manifest in its plugin folders.
//
// Checked: a manifest is accepted or refused with a message naming it,
// whatever its bytes; an accepted one names a library inside the
// manifest's own folder (a manifest can never point memosd elsewhere) and
// at least one known kind.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "plugins/loader/manifest.h"
#include "tests/fuzz/file_input.h"
#include "tests/fuzz/fuzz_seeds.h"

namespace {

std::unique_ptr<memos::fuzz::FileInput> input;

void check(bool ok, const char* what, const std::string& detail) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_plugin_manifest: %s: %s\n", what, detail.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  memos::fuzz::write_seeds_if_asked([](const memos::fuzz::EmitSeed& emit) {
    // Every manifest the project ships.
    for (const char* name :
         {"hash-embedder", "faiss-retriever", "xapian-retriever", "hybrid-fuser"}) {
      std::string file = std::string(name) + ".plugin.toml";
      emit(file, memos::fuzz::read_source_file("plugins/" + std::string(name) + "/" + file));
    }
    for (const char* name : {"llama-executor", "llama-embedder"}) {
      std::string file = std::string(name) + ".plugin.toml";
      emit(file, memos::fuzz::read_source_file("plugins/llama-executor/" + file));
    }
  });
  input = std::make_unique<memos::fuzz::FileInput>("fuzzed.plugin.toml");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = input->write(data, size);
  memos::plugins::Manifest manifest;
  std::string error = memos::plugins::read_manifest(path, &manifest);
  if (!error.empty()) {
    check(error.find(path) != std::string::npos, "an error that does not name the manifest", error);
    return 0;
  }
  namespace fs = std::filesystem;
  fs::path library = fs::path(manifest.library).lexically_normal();
  check(library.has_filename() && library.parent_path() == fs::path(input->dir()),
        "an accepted library that is not a file in the manifest's folder", manifest.library);
  check(!manifest.kinds.empty() && manifest.kind_bits != 0, "an accepted manifest with no kind",
        path);
  return 0;
}
