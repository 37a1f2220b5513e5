// device_choice.h — which device runs the model: the `device` setting
// against the devices llama.cpp's backends found.
//
//   auto   the first GPU when one answers, else the CPU (the note says why
//          no GPU: llama.cpp built for the CPU only, no driver, no device)
//   cpu    the CPU, even where a GPU answers
//   gpu    the first GPU; none is an error
//   gpu:N  the Nth GPU (from 0); absent is an error
//
// On a GPU, `gpu_layers` of the model's layers (all when negative) and
// their KV cache live in its memory; the rest run on the CPU.
#pragma once

#include <ggml-backend.h>

#include <cstdint>
#include <string>

namespace memos::llama_exec {

struct DeviceChoice {
  ggml_backend_dev_t gpu = nullptr;  // null: the CPU
  std::string name;                  // llama.cpp's name: "CPU", "CUDA0"
  std::string description;           // e.g. "NVIDIA H200"
  std::string note;                  // auto without a GPU: "no GPU, using CPU: why"
};

struct DeviceMemory {
  std::uint64_t free = 0, total = 0;  // bytes; the CPU's: the host's
};

// Throws std::invalid_argument for a malformed setting, or one naming a
// GPU that is not there (saying which GPUs are).
DeviceChoice choose_device(const std::string& setting);

// What the device reports now (0 and 0 when it cannot say).
DeviceMemory device_memory(const DeviceChoice& choice);

}  // namespace memos::llama_exec
