// library.h — loading a plugin into this process and calling it.
//
// load_library() dlopens the library a manifest names (RTLD_NOW |
// RTLD_LOCAL, never dlclose: a plugin's code may still be referenced by
// threads or atexit handlers) and validates what memos_plugin_describe_v1()
// returns before trusting any of it. PluginInstance owns one create()d
// instance and turns the asynchronous C call into a blocking one with a
// deadline, checking what comes back.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "memos/plugin.h"
#include "plugins/loader/manifest.h"

namespace memos::plugins {

struct LoadedLibrary {
  const memos_plugin_descriptor* descriptor = nullptr;
  Manifest manifest;
};

// Errors (the returned string, "" on success), each named: cannot open, no
// memos_plugin_describe_v1 symbol, null descriptor, struct too small, bad
// magic, ABI major mismatch, name not matching the manifest, kinds not
// matching, missing create/destroy/call.
std::string load_library(const Manifest& manifest, LoadedLibrary* out);

// Validates a descriptor (also used by memos-plugin-host).
std::string validate_descriptor(const memos_plugin_descriptor* d, const Manifest& manifest);

// Takes the bytes of each PluginPartial a call reports (memos_host_api.
// partial) while the caller waits: in order, on whichever thread reports
// it, never after the call has returned. Must not block for long.
using PartialSink = std::function<void(std::string_view message)>;
// Partials larger than this are dropped (and logged): progress and pieces
// of text are small.
constexpr std::size_t kMaxPartialBytes = 1u << 20;

struct CallResult {
  memos_status status = MEMOS_ERR_INTERNAL;
  std::string reply;    // PluginResponse bytes (may be empty on errors)
  std::string message;  // why, when status is not MEMOS_OK
};

class PluginInstance {
 public:
  // Calls create() with the manifest's settings. Returns null and sets
  // `error` if it fails.
  static std::unique_ptr<PluginInstance> create(const LoadedLibrary& library, std::string* error);
  ~PluginInstance();  // destroy()
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;

  // One call, blocking until the plugin completes it or `timeout` passes
  // (then it is cancelled and reported as MEMOS_ERR_BUSY; the plugin's late
  // completion is discarded). Replies larger than `max_reply_bytes` are
  // refused. Partials go to `on_partial` (none: dropped). Thread-safe.
  CallResult call(const std::string& request, std::chrono::milliseconds timeout,
                  std::size_t max_reply_bytes, const PartialSink& on_partial = {}) const;

  const LoadedLibrary& library() const { return library_; }

 private:
  PluginInstance(LoadedLibrary library) : library_(std::move(library)) {}
  LoadedLibrary library_;
  memos_instance* instance_ = nullptr;
  memos_host_api host_{};
  // Calls given up on at their deadline, kept until destroy() in case the
  // plugin completes them late.
  mutable std::mutex abandoned_mutex_;
  mutable std::vector<std::shared_ptr<void>> abandoned_;
};

// PluginConfig bytes from settings.
std::string config_message(const std::map<std::string, std::string>& settings);

}  // namespace memos::plugins
