// gpu_runtime.h — the little of the CUDA runtime the executor calls itself:
// whether a device answers, and page-locked host memory for staging state
// blobs (staging_pool.h). llama.cpp's CUDA backend does the rest.
//
// Two builds of this one interface, chosen by CMake: gpu_runtime_cuda.cu,
// compiled by nvcc with the CUDA runtime linked statically (so a machine
// without the driver still loads the plugin, and answers "no GPU"), where
// CMake finds nvcc; gpu_runtime_none.cpp elsewhere, which answers that the
// build has no CUDA. Nothing here throws; errors come back as text.
#pragma once

#include <cstddef>
#include <string>

namespace memos::llama_exec::gpu {

struct Probe {
  int devices = 0;           // CUDA devices the runtime sees
  int runtime_version = 0;   // CUDART_VERSION, e.g. 13000; 0 without CUDA
  std::string why_none;      // devices == 0: the runtime's reason, or "built without CUDA"
  std::string first_device;  // devices > 0: the first one's name
};

// Asks the runtime (once per call; cheap after the first).
Probe probe();

// True when this build has the CUDA runtime at all.
bool built_with_cuda();

// `bytes` of page-locked host memory, or null with *error set (no CUDA, no
// device, or the driver refused: page-locked memory is a limited resource).
void* alloc_pinned(std::size_t bytes, std::string* error);
// Frees what alloc_pinned returned; null is ignored.
void free_pinned(void* pointer);

// Copies `bytes` from `source` to a device buffer and back into `target`:
// the check scripts/test-gpu runs on pinned buffers. False with *error set
// when any step fails (always, without a device).
bool round_trip(const void* source, void* target, std::size_t bytes, std::string* error);

}  // namespace memos::llama_exec::gpu
