// gpu_runtime_none.cpp — gpu_runtime.h in a build without nvcc: no device,
// never page-locked memory, so the staging pool hands out ordinary memory.
#include "plugins/llama-executor/gpu_runtime.h"

namespace memos::llama_exec::gpu {

namespace {
constexpr const char* kNoCuda = "memosd was built without CUDA (no nvcc)";
}

Probe probe() {
  Probe p;
  p.why_none = kNoCuda;
  return p;
}

bool built_with_cuda() {
  return false;
}

void* alloc_pinned(std::size_t, std::string* error) {
  *error = kNoCuda;
  return nullptr;
}

void free_pinned(void*) {}

bool round_trip(const void*, void*, std::size_t, std::string* error) {
  *error = kNoCuda;
  return false;
}

}  // namespace memos::llama_exec::gpu
