#include "plugins/llama-executor/device_choice.h"

#include <charconv>
#include <stdexcept>
#include <vector>

#include "plugins/llama-executor/gpu_runtime.h"

namespace memos::llama_exec {

namespace {

std::vector<ggml_backend_dev_t> gpus() {
  std::vector<ggml_backend_dev_t> out;
  for (std::size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) out.push_back(dev);
  }
  return out;
}

// Why llama.cpp offers no GPU: its build, else what the CUDA runtime says.
std::string why_no_gpu() {
  if (ggml_backend_reg_by_name("CUDA") == nullptr) {
    return "llama.cpp was built for the CPU only (scripts/build-llama builds a CUDA one where "
           "nvidia-smi answers, or with MEMOS_CUDA=on)";
  }
  gpu::Probe probe = gpu::probe();
  return probe.why_none.empty() ? "the CUDA backend found no device" : probe.why_none;
}

DeviceChoice on_cpu(std::string note) {
  DeviceChoice c;
  c.name = "CPU";
  if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
    c.description = ggml_backend_dev_description(cpu);
  }
  c.note = std::move(note);
  return c;
}

DeviceChoice on_gpu(ggml_backend_dev_t dev) {
  DeviceChoice c;
  c.gpu = dev;
  c.name = ggml_backend_dev_name(dev);
  c.description = ggml_backend_dev_description(dev);
  return c;
}

std::string listing(const std::vector<ggml_backend_dev_t>& found) {
  if (found.empty()) return "there is none: " + why_no_gpu();
  std::string s = "there are " + std::to_string(found.size()) + ":";
  for (std::size_t i = 0; i < found.size(); ++i) {
    s += " gpu:" + std::to_string(i) + " (" + ggml_backend_dev_name(found[i]) + ", " +
         ggml_backend_dev_description(found[i]) + ")";
  }
  return s;
}

}  // namespace

DeviceChoice choose_device(const std::string& setting) {
  const std::vector<ggml_backend_dev_t> found = gpus();
  if (setting == "cpu") return on_cpu("");
  if (setting == "auto") {
    if (found.empty()) return on_cpu("no GPU, using CPU: " + why_no_gpu());
    return on_gpu(found.front());
  }
  std::size_t index = 0;
  if (setting.rfind("gpu:", 0) == 0) {
    const char* first = setting.data() + 4;
    const char* last = setting.data() + setting.size();
    auto [end, ec] = std::from_chars(first, last, index);
    if (first == last || ec != std::errc() || end != last) {
      throw std::invalid_argument("setting device = '" + setting +
                                  "': gpu:N takes a device number from 0");
    }
  } else if (setting != "gpu") {
    throw std::invalid_argument("setting device = '" + setting +
                                "' is not one of auto, cpu, gpu, gpu:N");
  }
  if (index >= found.size()) {
    throw std::invalid_argument("setting device = '" + setting +
                                "' names no GPU: " + listing(found));
  }
  return on_gpu(found[index]);
}

DeviceMemory device_memory(const DeviceChoice& choice) {
  ggml_backend_dev_t dev = choice.gpu;
  if (!dev) dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  DeviceMemory m;
  if (!dev) return m;
  std::size_t free = 0, total = 0;
  ggml_backend_dev_memory(dev, &free, &total);
  m.free = free;
  m.total = total;
  return m;
}

}  // namespace memos::llama_exec
