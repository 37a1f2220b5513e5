// fuzz_seeds.h — every fuzz target writes its own seed corpus from the real
// encoders it links: run it with MEMOS_FUZZ_WRITE_SEEDS=DIR and it writes
// its seeds into DIR and exits (scripts/fuzz --seeds does this for every
// target into tests/fuzz/corpus/<target>/).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>

namespace memos::fuzz {

using EmitSeed = std::function<void(const std::string& name, std::string_view bytes)>;

// From LLVMFuzzerInitialize: when MEMOS_FUZZ_WRITE_SEEDS names a folder,
// `write` emits each seed into it, and the process exits.
inline void write_seeds_if_asked(const std::function<void(const EmitSeed&)>& write) {
  const char* dir = std::getenv("MEMOS_FUZZ_WRITE_SEEDS");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  int count = 0;
  write([&](const std::string& name, std::string_view bytes) {
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write seed %s in %s\n", name.c_str(), dir);
      std::exit(1);
    }
    ++count;
  });
  std::fprintf(stderr, "wrote %d seeds into %s\n", count, dir);
  std::exit(0);
}

// A file of the source tree (a real config or manifest), whole.
inline std::string read_source_file(const std::string& relative) {
  std::ifstream in(std::string(MEMOS_SOURCE_DIR) + "/" + relative, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", relative.c_str());
    std::exit(1);
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace memos::fuzz
