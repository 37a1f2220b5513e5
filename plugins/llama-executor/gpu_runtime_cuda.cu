// gpu_runtime_cuda.cu — gpu_runtime.h over the CUDA runtime (nvcc). Every
// call checks its cudaError_t and turns it into text: the runtime must
// never abort memosd's plugin host, least of all on a machine with no
// driver, where every call answers cudaErrorInsufficientDriver.
#include <cuda_runtime.h>

#include "plugins/llama-executor/gpu_runtime.h"

namespace memos::llama_exec::gpu {

namespace {

std::string text_of(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

// A device buffer freed on every path out.
struct DeviceBuffer {
  void* pointer = nullptr;
  ~DeviceBuffer() {
    if (pointer) cudaFree(pointer);
  }
};

}  // namespace

Probe probe() {
  Probe p;
  cudaRuntimeGetVersion(&p.runtime_version);
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    // Clear the sticky error so a later call (llama.cpp's) starts clean.
    cudaGetLastError();
    p.why_none = text_of(e);
    return p;
  }
  if (n == 0) {
    p.why_none = "the CUDA runtime sees no device";
    return p;
  }
  p.devices = n;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) p.first_device = prop.name;
  return p;
}

bool built_with_cuda() {
  return true;
}

void* alloc_pinned(std::size_t bytes, std::string* error) {
  void* pointer = nullptr;
  cudaError_t e = cudaHostAlloc(&pointer, bytes, cudaHostAllocPortable);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *error = text_of(e);
    return nullptr;
  }
  return pointer;
}

void free_pinned(void* pointer) {
  if (pointer) cudaFreeHost(pointer);
}

bool round_trip(const void* source, void* target, std::size_t bytes, std::string* error) {
  DeviceBuffer device;
  cudaError_t e = cudaMalloc(&device.pointer, bytes);
  if (e == cudaSuccess) e = cudaMemcpy(device.pointer, source, bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(target, device.pointer, bytes, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *error = text_of(e);
    return false;
  }
  return true;
}

}  // namespace memos::llama_exec::gpu
