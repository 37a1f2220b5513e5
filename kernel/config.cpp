#include "kernel/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <thread>
#include <utility>

#include "ipc/unix_peer.h"
#include "kernel/config_fields.h"
#include "memcube/store.h"

namespace memos::kernel {
namespace {

using namespace config_fields;

std::string where(const std::string& path, const toml::source_region& src) {
  std::ostringstream out;
  out << path << ":" << src.begin.line << ":" << src.begin.column;
  return out.str();
}

// A memosd.conf is a small regular file: a folder, a device (/dev/zero), a
// FIFO or something huge is refused before it is read (a parser reading a
// folder sees an empty file, and would say "ok").
constexpr off_t kMaxConfigBytes = 1 << 20;

std::string check_is_config_file(const std::string& path) {
  struct stat st {};
  if (path.empty()) return "no configuration file named (an empty path)";
  if (stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (st.st_size > kMaxConfigBytes) {
    return path + ": " + std::to_string(st.st_size) +
           " bytes, larger than a memosd.conf may be (1 MiB)";
  }
  return "";
}

// Every key, in the order of memosd.conf(5).
std::vector<std::pair<std::string, Field>> fields(Config* c) {
  namespace sched = policies::scheduler_limits;
  constexpr std::int64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();
  return {
      {"socket", string(&c->socket, check_path)},
      {"data_dir", string(&c->data_dir, check_path)},
      {"policies_dir", string(&c->policies_dir, check_optional_path)},
      {"log_level", string(&c->log_level, check_log_level)},
      {"log_format", log_format(&c->log_format)},
      {"worker_threads", integer(&c->worker_threads, 0, 256)},
      {"fair_scheduling", boolean(&c->fair_scheduling)},
      {"shutdown_timeout_ms", integer(&c->shutdown_timeout_ms, 0, 600000)},
      {"ipc.max_message_bytes", integer(&c->ipc.max_message_bytes, 1024, 1ll << 30)},
      {"ipc.max_segments", integer(&c->ipc.max_segments, 1, 65536)},
      {"ipc.nesting_limit", integer(&c->ipc.nesting_limit, 8, 1024)},
      {"ipc.max_connections", integer(&c->ipc.max_connections, 1, 1000000)},
      {"ipc.max_connections_per_uid", integer(&c->ipc.max_connections_per_uid, 1, 1000000)},
      {"ipc.admin_reserved_connections", integer(&c->ipc.admin_reserved_connections, 1, 1000000)},
      {"ipc.frame_timeout_ms", integer(&c->ipc.frame_timeout_ms, 100, kMaxU32)},
      {"ipc.idle_timeout_ms", integer(&c->ipc.idle_timeout_ms, 0, kMaxU32)},
      {"ipc.max_buffered_input_bytes", integer(&c->ipc.max_buffered_input_bytes, 1024, 1ll << 40)},
      {"ipc.max_buffered_input_bytes_per_uid",
       integer(&c->ipc.max_buffered_input_bytes_per_uid, 1024, 1ll << 40)},
      {"ipc.max_inflight_per_connection", integer(&c->ipc.max_inflight_per_connection, 1, 1000000)},
      {"ipc.reply_buffer_bytes", integer(&c->ipc.reply_buffer_bytes, 4096, 1ll << 32)},
      {"ipc.slow_client_timeout_ms", integer(&c->ipc.slow_client_timeout_ms, 100, kMaxU32)},
      {"store.map_size_mb", integer(&c->store.map_size_mb, 1, 1ll << 20)},
      {"store.max_map_size_mb", integer(&c->store.max_map_size_mb, 1, 1ll << 26)},
      {"store.group_commit", boolean(&c->store.group_commit)},
      {"store.retention_interval_ms", integer(&c->store.retention_interval_ms, 100, 3600000)},
      {"store.retention_batch", integer(&c->store.retention_batch, 1, 1000000)},
      {"store.blob_gc_interval_s", integer(&c->store.blob_gc_interval_s, 1, 86400 * 7)},
      {"store.blob_gc_grace_s", integer(&c->store.blob_gc_grace_s, 60, 86400 * 30)},
      {"store.tombstone_retention_s",
       integer(&c->store.tombstone_retention_s, 0, 10ll * 366 * 24 * 3600)},
      {"store.max_text_bytes", integer(&c->store.max_text_bytes, 1, 1ll << 30)},
      {"store.max_tags", integer(&c->store.max_tags, 0, 100000)},
      {"store.max_tag_bytes", integer(&c->store.max_tag_bytes, 1, 1 << 20)},
      {"store.max_meta_entries", integer(&c->store.max_meta_entries, 0, 100000)},
      {"store.max_meta_key_bytes", integer(&c->store.max_meta_key_bytes, 1, 1 << 20)},
      {"store.max_meta_value_bytes", integer(&c->store.max_meta_value_bytes, 1, 1 << 30)},
      {"store.max_adapter_mb", integer(&c->store.max_adapter_mb, 1, 1ll << 20)},
      {"store.max_import_mb", integer(&c->store.max_import_mb, 1, 1ll << 24)},
      {"search.embedding_dim", integer(&c->search.embedding_dim, 0, 4096)},
      {"search.max_k", integer(&c->search.max_k, 1, 100000)},
      {"search.default_mode", search_mode(&c->search.default_mode)},
      {"search.hybrid_depth", integer(&c->search.hybrid_depth, 1, 10000)},
      {"search.rrf_k", integer(&c->search.rrf_k, 1, 100000)},
      {"search.dense_weight", number(&c->search.dense_weight, 0.01, 100)},
      {"search.lexical_weight", number(&c->search.lexical_weight, 0.01, 100)},
      {"search.recency_weight", number(&c->search.recency_weight, 0, 100)},
      {"search.recency_half_life_days", integer(&c->search.recency_half_life_days, 1, 36500)},
      {"search.importance_weight", number(&c->search.importance_weight, 0, 100)},
      {"search.mmr_lambda", number(&c->search.mmr_lambda, 0, 1)},
      {"search.snapshot_interval_s", integer(&c->search.snapshot_interval_s, 1, 86400)},
      {"search.stop_snapshot_s", integer(&c->search.stop_snapshot_s, 0, 3600)},
      {"search.index_max_backlog", integer(&c->search.index_max_backlog, 1, 10000000)},
      {"search.index_max_backlog_mb", integer(&c->search.index_max_backlog_mb, 1, 65536)},
      {"routing.high_depth", integer(&c->routing.high_depth, 1, 10000)},
      {"routing.feedback_documents", integer(&c->routing.feedback_documents, 1, 100)},
      {"routing.feedback_terms", integer(&c->routing.feedback_terms, 1, 64)},
      {"routing.feedback_weight", number(&c->routing.feedback_weight, 0.01, 100)},
      {"routing.high_mmr_lambda", number(&c->routing.high_mmr_lambda, 0, 1)},
      {"routing.window_weight", number(&c->routing.window_weight, 0.01, 100)},
      {"routing.expand_hits", integer(&c->routing.expand_hits, 1, 1000)},
      {"routing.expand_radius", integer(&c->routing.expand_radius, 1, 16)},
      {"routing.context_tokens", integer(&c->routing.context_tokens, 16, 1 << 20)},
      {"routing.lambda", number(&c->routing.lambda, 0, 100)},
      {"routing.default_tier", cost_tier(&c->routing.default_tier)},
      {"plugins.paths", string_list(&c->plugins.paths)},
      {"plugins.embedder", string(&c->plugins.embedder, check_path)},
      {"plugins.dense", string(&c->plugins.dense, check_path)},
      {"plugins.lexical", string(&c->plugins.lexical, check_path)},
      {"plugins.hybrid", string(&c->plugins.hybrid, check_path)},
      {"plugins.router", string(&c->plugins.router, check_optional_path)},
      {"plugins.settings", plugin_settings(&c->plugins.settings)},
      {"plugins.call_timeout_ms", integer(&c->plugins.call_timeout_ms, 10, 600000)},
      {"plugins.host", string(&c->plugins.host, check_path)},
      {"plugins.max_crashes", integer(&c->plugins.max_crashes, 1, 1000)},
      {"plugins.crash_window_s", integer(&c->plugins.crash_window_s, 1, 86400)},
      {"plugins.host_memory_mb", integer(&c->plugins.host_memory_mb, 0, std::int64_t{1} << 30)},
      {"executor.plugin", string(&c->executor.plugin, check_path)},
      {"executor.model", string(&c->executor.model, check_optional_path)},
      {"executor.models", tier_paths(&c->executor.models, check_optional_path)},
      {"executor.threads", integer(&c->executor.threads, 0, 256)},
      {"executor.context", integer(&c->executor.context, 64, 1 << 20)},
      {"executor.batch", integer(&c->executor.batch, 1, 1 << 16)},
      {"executor.kv_type", string(&c->executor.kv_type, check_kv_type)},
      {"executor.call_timeout_ms", integer(&c->executor.call_timeout_ms, 1000, 86400000)},
      {"executor.start_timeout_ms", integer(&c->executor.start_timeout_ms, 1000, 3600000)},
      {"executor.max_tokens", integer(&c->executor.max_tokens, 1, 1 << 20)},
      {"executor.prompt_cache_mb", integer(&c->executor.prompt_cache_mb, 0, 1ll << 24)},
      {"executor.max_adapter_mb", integer(&c->executor.max_adapter_mb, 0, 1ll << 24)},
      {"executor.device", string(&c->executor.device, check_device)},
      {"executor.gpu_layers", integer(&c->executor.gpu_layers, -1, 1 << 16)},
      {"scheduler.interval_s", integer(&c->scheduler.interval_s, 1, 86400)},
      {"scheduler.log_entries", integer(&c->scheduler.log_entries, 0, 1 << 20)},
      {"scheduler.enabled", boolean(&c->scheduler.defaults.enabled)},
      {"scheduler.working_set_tokens",
       integer(&c->scheduler.defaults.working_set_tokens, 0, sched::kMaxWorkingSetTokens)},
      {"scheduler.strength_gain",
       real(&c->scheduler.defaults.strength_gain, 0, sched::kMaxStrengthGain)},
      {"scheduler.search_recall_weight", real(&c->scheduler.defaults.search_recall_weight, 0, 1)},
      {"scheduler.time_unit", time_unit(&c->scheduler.defaults.time_unit_s)},
      {"scheduler.forgetting", forgetting(&c->scheduler.defaults.forgetting)},
      {"scheduler.archive_below", real(&c->scheduler.defaults.archive_below, 0.0001, 0.9999)},
      {"scheduler.archive_after_s",
       integer(&c->scheduler.defaults.archive_after_s, 0, sched::kMaxArchiveAfterS)},
      {"metrics.textfile", string(&c->metrics.textfile, check_optional_path)},
      {"metrics.interval_s", integer(&c->metrics.interval_s, 1, 86400)},
      {"cluster.enabled", boolean(&c->cluster.enabled)},
      {"cluster.name", string(&c->cluster.name, check_cluster_word)},
      {"cluster.node_id", string(&c->cluster.node_id, check_optional_cluster_word)},
      {"cluster.nats", string_list(&c->cluster.nats)},
      {"cluster.etcd", string_list(&c->cluster.etcd)},
      {"cluster.replicas", integer(&c->cluster.replicas, 1, 5)},
      {"cluster.lease_ms", integer(&c->cluster.lease_ms, 500, 60000)},
      {"cluster.shards", integer(&c->cluster.shards, 0, store::Store::kMaxShards)},
      {"cluster.prefetch_blobs", boolean(&c->cluster.prefetch_blobs)},
      {"cluster.index_share_s", integer(&c->cluster.index_share_s, 0, 7 * 86400)},
      {"cluster.index_share_min_items", integer(&c->cluster.index_share_min_items, 1, 1ll << 40)},
      {"cluster.store_snapshot_s", integer(&c->cluster.store_snapshot_s, 0, 30 * 86400)},
      {"cluster.log_retention_s", integer(&c->cluster.log_retention_s, 0, 365 * 86400)},
      {"cluster.blob_grace_s", integer(&c->cluster.blob_grace_s, 0, 30 * 86400)},
      {"cluster.tls_ca", string(&c->cluster.tls_ca, check_optional_path)},
      {"cluster.tls_cert", string(&c->cluster.tls_cert, check_optional_path)},
      {"cluster.tls_key", string(&c->cluster.tls_key, check_optional_path)},
      {"activation.chunk_tokens", integer(&c->activation.chunk_tokens, 1, 1 << 16)},
      {"activation.resident_mb", integer(&c->activation.resident_mb, 0, 1ll << 24)},
      {"activation.pinned_mb", integer(&c->activation.pinned_mb, 0, 1ll << 24)},
      {"activation.gpu_max_mb", integer(&c->activation.gpu_max_mb, 0, 1ll << 24)},
      {"activation.tenant_max_mb", integer(&c->activation.tenant_max_mb, 1, 1ll << 30)},
      {"activation.max_state_mb", integer(&c->activation.max_state_mb, 1, 250)},
      {"activation.eviction", activation_eviction(&c->activation.eviction)},
      {"activation.eviction_half_life_s",
       integer(&c->activation.eviction_half_life_s, 1, 365ll * 24 * 3600)},
  };
}

// `name` ("ipc.max_k") as its table (null: the top level) and last name.
std::pair<std::string, std::string> split_key(const std::string& name) {
  auto dot = name.find('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

toml::table as_table(const Config& config) {
  Config copy = config;  // the fields point into a Config they may write
  toml::table root;
  for (auto& [name, field] : fields(&copy)) {
    auto [section, key] = split_key(name);
    toml::table* into = &root;
    if (!section.empty()) {
      if (!root.contains(section)) root.insert(section, toml::table{});
      into = root[section].as_table();
    }
    field.put(into, key);
  }
  return root;
}

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  return std::nullopt;
}

const char* to_string(LogFormat format) {
  return format == LogFormat::json ? "json" : "text";
}

std::optional<ActivationEviction> parse_activation_eviction(std::string_view name) {
  if (name == "utility") return ActivationEviction::utility;
  if (name == "lru") return ActivationEviction::lru;
  return std::nullopt;
}

const char* to_string(ActivationEviction eviction) {
  return eviction == ActivationEviction::lru ? "lru" : "utility";
}

void apply_command_line(Config* config) {
  const CommandLineKeys& given = config->command_line;
  if (!given.socket.empty()) config->socket = given.socket;
  if (!given.data_dir.empty()) config->data_dir = given.data_dir;
  if (!given.log_level.empty()) config->log_level = given.log_level;
  if (!given.policies_dir.empty()) config->policies_dir = given.policies_dir;
}

unsigned worker_thread_count(const Config& config) {
  if (config.worker_threads != 0) return config.worker_threads;
  return std::max(2u, std::thread::hardware_concurrency());
}

void resolve_defaults(Config* config) {
  if (config->socket.empty()) config->socket = ipc::default_socket_path();
  if (config->data_dir.empty()) config->data_dir = default_data_dir();
  if (config->plugins.paths.empty()) config->plugins.paths = default_plugin_paths();
  if (config->plugins.host.empty()) config->plugins.host = default_plugin_host();
}

std::string config_to_toml(const Config& config) {
  std::ostringstream out;
  // Basic strings with escapes, no indentation: plain to read, and exactly
  // what the parser reads back.
  out << toml::toml_formatter{as_table(config), toml::format_flags::allow_unicode_strings} << "\n";
  return out.str();
}

std::vector<std::string> changed_keys(const Config& a, const Config& b) {
  Config copy_a = a, copy_b = b;
  auto fields_a = fields(&copy_a), fields_b = fields(&copy_b);
  std::vector<std::string> changed;
  for (std::size_t i = 0; i < fields_a.size(); ++i) {
    toml::table value_a, value_b;
    fields_a[i].second.put(&value_a, "v");
    fields_b[i].second.put(&value_b, "v");
    if (value_a != value_b) changed.push_back(fields_a[i].first);
  }
  return changed;
}

std::string load_config_file(const std::string& path, Config* config) {
  if (std::string bad = check_is_config_file(path); !bad.empty()) return bad;
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::string message(e.description());
    if (e.source().begin.line == 0) return path + ": " + message;
    return where(path, e.source()) + ": " + message;
  }
  std::map<std::string, Field> known;
  for (auto& [name, field] : fields(config)) known.emplace(name, std::move(field));
  std::string error;
  for (auto& [key, node] : table) {
    std::string name(key.str());
    if (auto* section = node.as_table();
        section && (name == "ipc" || name == "store" || name == "search" || name == "routing" ||
                    name == "plugins" || name == "executor" || name == "activation" ||
                    name == "scheduler" || name == "metrics" || name == "cluster")) {
      for (auto& [sub_key, sub_node] : *section) {
        std::string full = name + "." + std::string(sub_key.str());
        auto it = known.find(full);
        if (it == known.end())
          return where(path, sub_key.source()) + ": unknown key '" + full + "'";
        if (error = it->second.set(sub_node); !error.empty()) {
          return where(path, sub_node.source()) + ": " + full + ": " + error;
        }
      }
      continue;
    }
    auto it = known.find(name);
    if (it == known.end()) return where(path, key.source()) + ": unknown key '" + name + "'";
    if (error = it->second.set(node); !error.empty()) {
      return where(path, node.source()) + ": " + name + ": " + error;
    }
  }
  // Limits that contradict each other belong to no one line, but to the
  // file: its name still starts the message (found by fuzz_config).
  if (error = validate_config(*config); !error.empty()) return path + ": " + error;
  return "";
}

std::string validate_config(const Config& c) {
  if (!c.socket.empty() && c.socket.size() >= 108) {
    return "socket path is longer than a Unix socket address allows (107 bytes)";
  }
  if (check_log_level(c.log_level) != "") return check_log_level(c.log_level);
  // The answer tiers run beside the executor that serves everything else.
  for (std::size_t i = 0; i < c.executor.models.size(); ++i) {
    if (!c.executor.models[i].empty() && c.executor.model.empty())
      return std::string("executor.models.") + to_string(static_cast<CostTier>(i)) +
             " needs executor.model";
  }
  if (c.store.max_map_size_mb < c.store.map_size_mb) {
    return "store.max_map_size_mb must be at least store.map_size_mb";
  }
  if (c.plugins.host_memory_mb != 0 && c.plugins.host_memory_mb < 64) {
    return "plugins.host_memory_mb must be 0 (half the physical memory) or at least 64";
  }
  if (c.store.max_text_bytes >= c.ipc.max_message_bytes) {
    return "store.max_text_bytes must be smaller than ipc.max_message_bytes";
  }
  if (c.ipc.max_connections_per_uid > c.ipc.max_connections) {
    return "ipc.max_connections_per_uid must be at most ipc.max_connections";
  }
  if (c.search.embedding_dim != 0 && c.search.embedding_dim < 16) {
    return "search.embedding_dim must be 0 (the embedder's own) or at least 16";
  }
  if (c.ipc.idle_timeout_ms != 0 && c.ipc.idle_timeout_ms < 100) {
    return "ipc.idle_timeout_ms must be 0 (never) or at least 100";
  }
  // A frame of the largest size must fit, or the largest requests could
  // never be sent.
  if (c.ipc.max_buffered_input_bytes_per_uid < c.ipc.max_message_bytes) {
    return "ipc.max_buffered_input_bytes_per_uid must be at least ipc.max_message_bytes";
  }
  if (c.ipc.max_buffered_input_bytes < c.ipc.max_buffered_input_bytes_per_uid) {
    return "ipc.max_buffered_input_bytes must be at least ipc.max_buffered_input_bytes_per_uid";
  }
  if (c.cluster.enabled) {
    if (c.cluster.node_id.empty()) return "cluster.enabled needs cluster.node_id";
    if (c.cluster.nats.empty()) return "cluster.enabled needs cluster.nats (the log's servers)";
    if (c.cluster.etcd.empty()) return "cluster.enabled needs cluster.etcd (the lease servers)";
  }
  for (const auto& url : c.cluster.nats) {
    if (std::string e = check_endpoint(url, url.starts_with("tls://") ? "tls://" : "nats://");
        !e.empty()) {
      return "cluster.nats: " + e;
    }
  }
  const bool tls = cluster_tls(c.cluster);
  for (const auto& url : c.cluster.etcd) {
    if (std::string e = check_endpoint(url, tls ? "https://" : "http://"); !e.empty()) {
      return "cluster.etcd: " + e + (tls ? " (TLS is on: cluster.tls_* or a tls:// server)" : "");
    }
  }
  if (c.cluster.tls_cert.empty() != c.cluster.tls_key.empty()) {
    return "cluster.tls_cert and cluster.tls_key go together";
  }
  return "";
}

bool cluster_tls(const ClusterConfig& c) {
  if (!c.tls_ca.empty() || !c.tls_cert.empty() || !c.tls_key.empty()) return true;
  for (const auto& url : c.nats) {
    if (url.starts_with("tls://")) return true;
  }
  for (const auto& url : c.etcd) {
    if (url.starts_with("https://")) return true;
  }
  return false;
}

std::string check_named_files(const Config& c) {
  std::vector<std::pair<std::string, std::string>> files;  // key, path
  if (!c.executor.model.empty()) files.emplace_back("executor.model", c.executor.model);
  for (std::size_t i = 0; i < c.executor.models.size(); ++i) {
    if (c.executor.models[i].empty()) continue;
    std::string key = std::string("executor.models.") + to_string(static_cast<CostTier>(i));
    files.emplace_back(std::move(key), c.executor.models[i]);
  }
  if (c.cluster.enabled) {
    for (const auto& [key, path] : {std::pair{"cluster.tls_ca", &c.cluster.tls_ca},
                                    std::pair{"cluster.tls_cert", &c.cluster.tls_cert},
                                    std::pair{"cluster.tls_key", &c.cluster.tls_key}}) {
      if (!path->empty()) files.emplace_back(key, *path);
    }
  }
  for (const auto& [key, path] : files) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return key + " = " + path + ": " + std::strerror(errno);
    if (!S_ISREG(st.st_mode)) return key + " = " + path + ": not a file";
    if (access(path.c_str(), R_OK) != 0) return key + " = " + path + ": " + std::strerror(errno);
  }
  return "";
}

}  // namespace memos::kernel
