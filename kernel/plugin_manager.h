// plugin_manager.h — the plugins memosd knows: listed from their manifests
// at start (without loading), and loaded when the configuration uses them.
//
// Today one plugin is used: the embedder (plugins.embedder), in process or,
// when its manifest says so, isolated in memos-plugin-host.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernel/config.h"
#include "kernel/plugin_embedder.h"
#include "plugins/loader/library.h"
#include "plugins/loader/manifest.h"

namespace memos::kernel {

struct PluginState {
  plugins::Manifest manifest;
  std::string state;   // "listed", "loaded" or "failed"
  std::string detail;  // the version it reports, or why it failed
  std::string health;  // of a loaded plugin: running, restarting, quarantined
};

class PluginManager {
 public:
  explicit PluginManager(const PluginsConfig& config);

  // Lists every manifest in the configured folders; refused ones are logged.
  void scan();
  // Loads the configured embedder and describes it. Returns null and sets
  // `error` if it is missing, untrusted, invalid, isolated or fails create().
  std::unique_ptr<PluginEmbedder> load_embedder(std::string* model, std::string* error);

  // A copy of every plugin's state (thread-safe).
  std::vector<PluginState> states() const;
  const std::string& embedder_name() const { return config_.embedder; }
  void set_state(const std::string& name, std::string state, std::string detail);

 private:
  PluginsConfig config_;
  std::string host_binary_;
  mutable std::mutex mutex_;
  std::vector<PluginState> plugins_;
  std::map<std::string, std::shared_ptr<plugins::PluginChannel>> channels_;
};

}  // namespace memos::kernel
