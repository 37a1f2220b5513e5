#include "kernel/plugin_manager.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <thread>

#include "ipc/schema/plugin.capnp.h"
#include "plugins/loader/isolated.h"

namespace memos::kernel {
namespace {

// plugins.host_memory_mb, with 0 read as half the physical memory: one
// runaway plugin host must leave the rest of the machine room to work.
std::uint64_t host_memory_mb(const PluginsConfig& config) {
  if (config.host_memory_mb != 0) return config.host_memory_mb;
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;  // unknown: no limit
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 2 >> 20;
}

}  // namespace

PluginManager::PluginManager(const PluginsConfig& config) : config_(config) {
  // Beside the binary: the build tree (build/kernel/memosd -> build/plugins)
  // and the installed layout (bin/ -> lib/memosd/plugins).
  if (config_.paths.empty()) config_.paths = default_plugin_paths();
  host_binary_ = config_.host.empty() ? default_plugin_host() : config_.host;
}

void PluginManager::scan() {
  plugins::Listing listing = plugins::list_plugins(config_.paths);
  for (const auto& problem : listing.problems) spdlog::warn("plugin refused: {}", problem);
  std::lock_guard lock(mutex_);
  // A rescan refreshes manifests but keeps what is known of loaded plugins.
  std::vector<PluginRecord> fresh;
  for (auto& m : listing.plugins) {
    PluginRecord next{std::move(m), memos::PluginState::listed, "", ""};
    for (const auto& old : plugins_) {
      if (old.manifest.name == next.manifest.name) {
        next.state = old.state;
        next.detail = old.detail;
      }
    }
    fresh.push_back(std::move(next));
  }
  plugins_ = std::move(fresh);
  spdlog::info("{} plugin(s) listed", plugins_.size());
}

std::vector<PluginRecord> PluginManager::states() const {
  std::lock_guard lock(mutex_);
  std::vector<PluginRecord> out = plugins_;
  for (auto& p : out) {
    auto it = channels_.find(p.manifest.name);
    if (it == channels_.end()) continue;
    // Several hosts of one plugin: the first that is not running says it.
    bool told = false;
    for (const auto& weak : it->second) {
      auto channel = weak.lock();
      if (!channel) continue;
      p.deaths += channel->incarnation();
      p.faults += channel->plugin_faults();
      if (told) continue;
      p.health = channel->health();
      told = p.health != "running";
    }
  }
  return out;
}

void PluginManager::set_state(const std::string& name, memos::PluginState state,
                              std::string detail) {
  std::lock_guard lock(mutex_);
  for (auto& p : plugins_) {
    if (p.manifest.name == name) {
      p.state = state;
      p.detail = std::move(detail);
    }
  }
}

std::shared_ptr<plugins::PluginChannel> PluginManager::load(
    const std::string& name, std::uint32_t kind, const std::map<std::string, std::string>& extra,
    const std::function<std::string(plugin_wire::Capabilities::Reader)>& describe,
    std::string* error, std::chrono::milliseconds start_timeout) {
  plugins::Manifest manifest;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(plugins_.begin(), plugins_.end(),
                           [&](const PluginRecord& p) { return p.manifest.name == name; });
    if (it == plugins_.end()) {
      *error = "plugin '" + name + "' is not in any plugin folder";
      return nullptr;
    }
    manifest = it->manifest;
  }
  auto fail = [&](std::string why) -> std::shared_ptr<plugins::PluginChannel> {
    set_state(name, memos::PluginState::failed, why);
    *error = std::move(why);
    return nullptr;
  };
  if (!(manifest.kind_bits & kind)) return fail("plugin " + name + " is not of the kind needed");
  // The manifest's settings, then memosd.conf's [plugins.settings.NAME], then
  // what memosd itself decides (such as a retriever's state folder).
  if (auto configured = config_.settings.find(name); configured != config_.settings.end()) {
    for (const auto& [key, value] : configured->second) manifest.settings[key] = value;
  }
  for (const auto& [key, value] : extra) manifest.settings[key] = value;
  // Where its manifest lies, for files shipped beside it (a router's weights).
  manifest.settings["plugin_dir"] = std::filesystem::path(manifest.library).parent_path().string();
  std::shared_ptr<plugins::PluginChannel> channel;
  std::string err, version;
  if (manifest.isolated) {
    plugins::IsolationPolicy policy;
    policy.host_binary = host_binary_;
    policy.max_crashes = config_.max_crashes;
    policy.crash_window = std::chrono::seconds(config_.crash_window_s);
    policy.memory_mb = host_memory_mb(config_);
    if (start_timeout.count() > 0) policy.start_timeout = start_timeout;
    auto isolated = std::make_shared<plugins::IsolatedChannel>(manifest, policy);
    if (err = isolated->start(); !err.empty()) return fail(err);
    channel = isolated;
    version = "isolated";
  } else {
    plugins::LoadedLibrary library;
    if (err = plugins::load_library(manifest, &library); !err.empty()) return fail(err);
    auto instance = plugins::PluginInstance::create(library, &err);
    if (!instance) return fail(err);
    version = library.descriptor->version ? library.descriptor->version : "";
    channel = std::make_shared<plugins::InProcessChannel>(std::move(instance));
  }

  // Ask what it is.
  capnp::MallocMessageBuilder request;
  request.initRoot<plugin_wire::PluginRequest>().setDescribe();
  auto words = capnp::messageToFlatArray(request);
  auto bytes = words.asBytes();
  auto r = channel->call(std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size()),
                         std::chrono::milliseconds(config_.call_timeout_ms), 1 << 20);
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    if (r.status != MEMOS_OK || r.reply.empty() || r.reply.size() % 8) {
      err = "describe failed: " + r.message;
      return;
    }
    std::vector<capnp::word> reply(r.reply.size() / 8);
    std::memcpy(reply.data(), r.reply.data(), r.reply.size());
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(reply.data(), reply.size()));
    auto response = reader.getRoot<plugin_wire::PluginResponse>();
    if (!response.isCapabilities()) {
      err = "describe did not return capabilities";
      return;
    }
    err = describe(response.getCapabilities());
  });
  KJ_IF_MAYBE (e, failure) {
    err = std::string("describe: ") + e->getDescription().cStr();
  }
  if (!err.empty()) return fail("plugin " + name + ": " + err);
  set_state(name, memos::PluginState::loaded, version);
  {
    std::lock_guard lock(mutex_);
    auto& hosts = channels_[name];
    std::erase_if(hosts, [](const auto& weak) { return weak.expired(); });
    hosts.push_back(channel);
  }
  spdlog::info("plugin {} {} loaded {}", name, version,
               manifest.isolated ? "in memos-plugin-host" : "in process");
  return channel;
}

void PluginManager::reset_quarantine(const std::string& name) {
  std::vector<std::shared_ptr<plugins::PluginChannel>> channels;
  {
    std::lock_guard lock(mutex_);
    if (auto it = channels_.find(name); it != channels_.end()) {
      for (const auto& weak : it->second)
        if (auto channel = weak.lock()) channels.push_back(std::move(channel));
    }
  }
  for (const auto& channel : channels) channel->reset_quarantine();
}

std::unique_ptr<PluginEmbedder> PluginManager::load_embedder(std::string* model,
                                                             std::string* error) {
  std::uint32_t max_batch = 256, dimension = 0;
  auto channel = load(
      config_.embedder, MEMOS_KIND_EMBEDDER, {},
      [&](plugin_wire::Capabilities::Reader caps) -> std::string {
        auto e = caps.getEmbedder();
        *model = e.getModel();
        if (e.getMaxBatch() != 0) max_batch = e.getMaxBatch();
        dimension = e.getDimension();
        return model->empty() ? "no model name" : "";
      },
      error);
  if (!channel) return nullptr;
  spdlog::info("embedder model {}", *model);
  return std::make_unique<PluginEmbedder>(config_.embedder, channel,
                                          std::chrono::milliseconds(config_.call_timeout_ms),
                                          max_batch, dimension);
}

std::shared_ptr<PluginRetriever> PluginManager::load_retriever(const std::string& name,
                                                               const std::string& state_dir,
                                                               std::string* error) {
  std::vector<SearchMode> modes;
  auto channel = load(
      name, MEMOS_KIND_RETRIEVER, {{"state_dir", state_dir}},
      [&](plugin_wire::Capabilities::Reader caps) -> std::string {
        // A mode this memosd does not know (a newer plugin's) is not offered.
        for (auto m : caps.getRetriever().getModes()) {
          if (auto mode = parse_search_mode(m.cStr())) modes.push_back(*mode);
        }
        return modes.empty() ? "it names no retrieval mode memosd knows" : "";
      },
      error);
  if (!channel) return nullptr;
  auto retriever = std::make_shared<PluginRetriever>(
      name, channel, std::chrono::milliseconds(config_.call_timeout_ms), std::move(modes));
  retriever->set_state_dir(state_dir);
  return retriever;
}

std::shared_ptr<PluginExecutor> PluginManager::load_executor(const ExecutorConfig& executor,
                                                             const ActivationConfig& activation,
                                                             const std::string& state_dir,
                                                             std::string* error) {
  unsigned threads = executor.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::map<std::string, std::string> settings = {
      {"model", executor.model},
      {"threads", std::to_string(threads)},
      {"context", std::to_string(executor.context)},
      {"batch", std::to_string(executor.batch)},
      {"kv_type", executor.kv_type},
      {"prompt_cache_bytes", std::to_string(executor.prompt_cache_mb << 20)},
      {"max_adapter_bytes", std::to_string(executor.max_adapter_mb << 20)},
      {"resident_bytes", std::to_string(activation.resident_mb << 20)},
      {"pinned_bytes", std::to_string(activation.pinned_mb << 20)},
      {"device_state_bytes", std::to_string(activation.gpu_max_mb << 20)},
      {"device", executor.device},
      {"gpu_layers", std::to_string(executor.gpu_layers)},
      {"state_dir", state_dir},
  };
  ExecutorInfo info;
  auto channel = load(
      executor.plugin, MEMOS_KIND_EXECUTOR, settings,
      [&](plugin_wire::Capabilities::Reader caps) -> std::string {
        auto e = caps.getExecutor();
        info.model = e.getModel();
        info.key = {e.getModelHash(), e.getAdapters(), e.getKvType(), e.getLayout(),
                    e.getStateFormat()};
        info.context_tokens = e.getContextTokens();
        info.batch_tokens = e.getBatchTokens();
        info.vocabulary = e.getVocabulary();
        info.device = e.getDevice();
        info.device_description = e.getDeviceDescription();
        info.device_note = e.getDeviceNote();
        info.gpu_layers = e.getGpuLayers();
        info.layers = e.getLayers();
        info.device_memory_bytes = e.getDeviceMemoryBytes();
        if (info.key.model_hash.size() != 64) return "it names no model hash";
        if (info.context_tokens == 0) return "it has no context";
        return "";
      },
      error, std::chrono::milliseconds(executor.start_timeout_ms));
  if (!channel) return nullptr;
  spdlog::info("executor {}: model {} ({}), context {} tokens, KV {}", executor.plugin, info.model,
               info.key.model_hash.substr(0, 12), info.context_tokens, info.key.kv_type);
  if (info.device.empty() || info.device == "CPU") {
    spdlog::info("executor {}: on the CPU{}{}", executor.plugin,
                 info.device_note.empty() ? "" : " (",
                 info.device_note.empty() ? "" : info.device_note + ")");
  } else {
    spdlog::info("executor {}: on {} ({}), {} of {} layers, {} MiB of device memory",
                 executor.plugin, info.device, info.device_description, info.gpu_layers,
                 info.layers, info.device_memory_bytes >> 20);
  }
  // An exported state comes back in a reply: allow the largest kept, and some.
  std::size_t max_reply = static_cast<std::size_t>(activation.max_state_mb << 20) + (4u << 20);
  return std::make_shared<PluginExecutor>(executor.plugin, channel, std::move(info),
                                          std::chrono::milliseconds(executor.call_timeout_ms),
                                          max_reply);
}

std::shared_ptr<PluginRouter> PluginManager::load_router(const std::string& embedder_model,
                                                         std::string* error) {
  RouterInfo info;
  auto channel = load(
      config_.router, MEMOS_KIND_ROUTER, {},
      [&](plugin_wire::Capabilities::Reader caps) -> std::string {
        // A router of minor 1 (the draft) describes no RouterCapabilities.
        if (!caps.hasRouter()) return "it describes no router (plugin ABI 1.2)";
        auto r = caps.getRouter();
        info.model = r.getModel();
        info.dimension = r.getDimension();
        info.embedder = r.getEmbedder();
        if (info.dimension > 4096) return "it reads an embedding longer than 4096";
        if (info.dimension > 0 && info.embedder != embedder_model)
          return "it was trained with embedder " + info.embedder + ", memosd runs " +
                 embedder_model;
        return "";
      },
      error);
  if (!channel) return nullptr;
  spdlog::info("router {}: {}", config_.router, info.model);
  return std::make_shared<PluginRouter>(config_.router, channel,
                                        std::chrono::milliseconds(config_.call_timeout_ms), info);
}

}  // namespace memos::kernel
