#include "plugins/llama-executor/f32_copy.h"

#include <dirent.h>
#include <llama.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace memos::llama_exec {
namespace {

constexpr const char* kPrefix = "memos-distill-f32.";

std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  return text;
}

// MemAvailable from /proc/meminfo; 0 if it cannot be read (no check then).
std::uint64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib << 10;
  }
  return 0;
}

// Copies are named "<kPrefix><pid>.<ns>.gguf": one whose executor is gone
// was cut short by a crash.
void remove_stale_copies(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(kPrefix, 0) != 0) continue;
    const long pid =
        std::strtol(name.c_str() + std::char_traits<char>::length(kPrefix), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      ::unlink((dir + "/" + name).c_str());
    }
  }
  ::closedir(d);
}

}  // namespace

F32Need f32_need(ggml_context* shapes) {
  F32Need need;
  for (ggml_tensor* t = ggml_get_first_tensor(shapes); t; t = ggml_get_next_tensor(shapes, t)) {
    if (ggml_n_dims(t) >= 2 && t->type != GGML_TYPE_F32) need.convert = true;
    need.bytes += static_cast<std::uint64_t>(ggml_nelements(t)) * sizeof(float);
  }
  return need;
}

ScratchFile::~ScratchFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

ScratchFile write_f32_copy(const std::string& model_path, const F32Need& need,
                           const std::string& scratch_dir, int threads) {
  const std::string dir =
      scratch_dir.empty() ? std::filesystem::temp_directory_path().string() : scratch_dir;
  remove_stale_copies(dir);
  // Refused before anything is written: the copy is loaded whole, and is
  // on disk while it is converted.
  if (const std::uint64_t free_memory = available_memory();
      free_memory && need.bytes > free_memory) {
    throw std::invalid_argument(
        "the model's weights are not F32, and the F32 copy training needs (" + gib(need.bytes) +
        ") is more than the memory available (" + gib(free_memory) + ")");
  }
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) == 0) {
    const std::uint64_t free_disk = std::uint64_t{fs.f_bavail} * fs.f_frsize;
    if (need.bytes + (64u << 20) > free_disk) {
      throw std::invalid_argument(
          "the model's weights are not F32, and the F32 copy training needs (" + gib(need.bytes) +
          ") does not fit the free space of " + dir + " (" + gib(free_disk) + ")");
    }
  }
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  ScratchFile copy(dir + "/" + kPrefix + std::to_string(::getpid()) + "." + std::to_string(stamp) +
                   ".gguf");
  llama_model_quantize_params params = llama_model_quantize_default_params();
  params.nthread = threads;
  params.ftype = LLAMA_FTYPE_ALL_F32;
  params.allow_requantize = true;        // a quantized weight is dequantized
  params.quantize_output_tensor = true;  // the output head too: the gradient flows through it
  if (llama_model_quantize(model_path.c_str(), copy.path().c_str(), &params) != 0) {
    throw std::runtime_error("llama.cpp could not make an F32 copy of the model for training in " +
                             dir + " (its log says why)");
  }
  return copy;
}

}  // namespace memos::llama_exec
