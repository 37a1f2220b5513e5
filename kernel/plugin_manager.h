// plugin_manager.h — the plugins memosd knows: listed from their manifests
// at start (without loading), and loaded when the configuration uses them.
//
// memosd uses an embedder (plugins.embedder: the hash embedder, or the GGUF
// embedder of llama-executor), retrievers and a fuser (plugins.dense,
// plugins.lexical, plugins.hybrid), a router for budget "auto"
// (plugins.router) and, with executor.model set, a model executor
// (executor.plugin). Each runs in process or, when its manifest
// says so, isolated in memos-plugin-host, which restarts it after a crash
// and quarantines it after max_crashes within crash_window_s (its health).
// A manifest's settings are overridden by memosd.conf's
// [plugins.settings.NAME], then by what memosd decides (a state folder, the
// model, and plugin_dir: the manifest's folder). pluginReload re-reads the manifests and, for the
// embedder, swaps it in only if its model is unchanged (handlers/plugins.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ipc/schema/plugin.capnp.h"
#include "kernel/config.h"
#include "kernel/plugin_embedder.h"
#include "kernel/plugin_executor.h"
#include "kernel/plugin_retriever.h"
#include "kernel/plugin_router.h"
#include "memos/vocabulary.h"
#include "plugins/loader/library.h"
#include "plugins/loader/manifest.h"

namespace memos::kernel {

// A plugin as memosd knows it: its manifest, and how loading it went.
struct PluginRecord {
  plugins::Manifest manifest;
  memos::PluginState state = memos::PluginState::listed;
  std::string detail;  // the version it reports, or why it failed
  std::string health;  // of a loaded plugin: running, restarting, quarantined
  // Of its hosts in use: deaths (each host restarts on its next call) and,
  // of them, those the plugin brought on itself (PluginChannel).
  std::uint64_t deaths = 0, faults = 0;
};

class PluginManager {
 public:
  explicit PluginManager(const PluginsConfig& config);

  // Lists every manifest in the configured folders; refused ones are logged.
  void scan();
  // Loads the configured embedder and describes it. Returns null and sets
  // `error` (the plugin is then `failed`) if it is in no plugin folder, is
  // not an embedder, its library will not load or its host will not start,
  // create() fails, or it does not describe itself as one.
  std::unique_ptr<PluginEmbedder> load_embedder(std::string* model, std::string* error);
  // Loads a retriever plugin, telling it `state_dir` (its snapshots). Same
  // errors as load_embedder().
  std::shared_ptr<PluginRetriever> load_retriever(const std::string& name,
                                                  const std::string& state_dir, std::string* error);

  // Loads the executor with the model and limits of `executor` and
  // `activation` (its model-hash cache in `state_dir`). Same errors as
  // load_embedder(), and those of loading the model.
  std::shared_ptr<PluginExecutor> load_executor(const ExecutorConfig& executor,
                                                const ActivationConfig& activation,
                                                const std::string& state_dir, std::string* error);

  // Loads the router of budget "auto" (plugins.router). Same errors as
  // load_embedder(), and: it describes no RouterCapabilities (a plugin of ABI
  // minor 1), or reads an embedding of another model than `embedder_model`.
  std::shared_ptr<PluginRouter> load_router(const std::string& embedder_model, std::string* error);

  // A copy of every plugin's state (thread-safe).
  std::vector<PluginRecord> states() const;
  const std::string& embedder_name() const { return config_.embedder; }
  void set_state(const std::string& name, memos::PluginState state, std::string detail);
  // Lets plugin `name`, loaded and quarantined, run again (a reload of a
  // plugin other than the embedder, which is loaded afresh instead).
  // Nothing happens if it is not loaded.
  void reset_quarantine(const std::string& name);

 private:
  // Loads `name` (which must be of `kind`) with `extra` settings over its
  // manifest's, and describes it: `describe` checks the capabilities and
  // returns "" or why they will not do.
  std::shared_ptr<plugins::PluginChannel> load(
      const std::string& name, std::uint32_t kind, const std::map<std::string, std::string>& extra,
      const std::function<std::string(plugin_wire::Capabilities::Reader)>& describe,
      std::string* error, std::chrono::milliseconds start_timeout = {});

  PluginsConfig config_;
  std::string host_binary_;
  mutable std::mutex mutex_;
  std::vector<PluginRecord> plugins_;
  // By plugin name, each host in use (an executor may run several models:
  // executor.models); the users own them, a reload's old ones expire.
  std::map<std::string, std::vector<std::weak_ptr<plugins::PluginChannel>>> channels_;
};

}  // namespace memos::kernel
