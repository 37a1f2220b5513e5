// config.h — memosd's configuration: defaults, the TOML file, validation.
//
// Every key is documented in memosd.conf(5) and dist/memosd.conf.
// Precedence: built-in defaults < config file < command-line options.
// Which file is read when none is named: config_discovery.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memos/vocabulary.h"
#include "policies/scheduler_settings.h"

namespace memos::kernel {

using memos::SearchMode;

struct IpcConfig {
  std::size_t max_message_bytes = 16u << 20;
  std::uint32_t max_segments = 512;
  int nesting_limit = 64;
  std::uint32_t max_connections = 1024;
  // One uid's share, so that no user can take every connection.
  std::uint32_t max_connections_per_uid = 64;
  // Root and memosd's own uid may go this far past both limits above.
  std::uint32_t admin_reserved_connections = 16;
  std::uint32_t max_inflight_per_connection = 1024;
  std::size_t reply_buffer_bytes = 8u << 20;
  std::uint32_t slow_client_timeout_ms = 10000;
  // A frame begun must be complete within this (slowloris).
  std::uint32_t frame_timeout_ms = 30000;
  // A connection with nothing in flight is closed after this; 0: never (the
  // SDK keeps one connection per Client and does not reconnect).
  std::uint32_t idle_timeout_ms = 0;
  // Frames received but not yet dispatched, across all connections and per
  // uid (client_limits.h).
  std::size_t max_buffered_input_bytes = 256u << 20;
  std::size_t max_buffered_input_bytes_per_uid = 64u << 20;
};

struct StoreConfig {
  std::uint64_t map_size_mb = 1024;
  std::uint64_t max_map_size_mb = 262144;
  bool group_commit = true;
  std::uint32_t retention_interval_ms = 1000;
  std::uint32_t retention_batch = 1000;
  std::uint64_t tombstone_retention_s = 30ull * 24 * 3600;
  std::uint32_t blob_gc_interval_s = 300;
  std::uint32_t blob_gc_grace_s = 3600;
  std::size_t max_text_bytes = 1u << 20;
  std::uint32_t max_tags = 64;
  std::size_t max_tag_bytes = 128;
  std::uint32_t max_meta_entries = 64;
  std::size_t max_meta_key_bytes = 128;
  std::size_t max_meta_value_bytes = 4096;
  std::uint64_t max_import_mb = 4096;   // the largest cube archive an import takes
  std::uint64_t max_adapter_mb = 1024;  // the largest adapter file an upload takes
};

struct SearchConfig {
  // 0: the embedder's own (a GGUF model's; hash-v1 describes 256), set
  // from it when the embedder loads (Daemon::load_embedder).
  std::uint32_t embedding_dim = 0;
  std::uint32_t max_k = 1000;
  SearchMode default_mode = SearchMode::hybrid;  // of new cubes
  std::uint32_t hybrid_depth = 50;               // candidates asked of each retriever
  // Fusion defaults chosen by leave-one-conversation-out cross-validation
  // on LoCoMo's dev split with the hash-v1 embedder (bench/README.md): its
  // dense list is much weaker than BM25's, so it counts a tenth, with the
  // usual RRF constant. Heavier dense weights fit dev's conversations but
  // not unseen ones.
  std::uint32_t rrf_k = 60;
  float dense_weight = 0.1f;  // of the dense list in hybrid fusion
  float lexical_weight = 1;   // of the lexical list
  float recency_weight = 0;
  std::uint32_t recency_half_life_days = 30;
  float importance_weight = 0;
  float mmr_lambda = 0;                    // 0: no diversification
  std::uint32_t snapshot_interval_s = 60;  // index snapshots of changed cubes
  // At a clean stop, snapshots are written for this long at most (largest
  // backlog first); the rest are caught up from the store at the next start.
  std::uint32_t stop_snapshot_s = 10;
  // Writes answered but not yet indexed (and the bytes of their text) past
  // which the writer waits for the indexer: new writes slow to its pace
  // rather than the search lag growing without bound (index_feed.h).
  std::uint32_t index_max_backlog = 10000;
  std::uint32_t index_max_backlog_mb = 256;
};

// The query-time memory modules' tiers (memos(7), "Routing";
// kernel/routing/routed_search.h). Defaults chosen on LoCoMo's dev split
// (bench/README.md, router-pareto).
struct RoutingConfig {
  // retrieve High: hybrid with pseudo-relevance feedback and MMR over a
  // wider candidate set.
  std::uint32_t high_depth = 100;        // candidates asked of each retriever
  std::uint32_t feedback_documents = 5;  // first-pass hits the feedback reads
  std::uint32_t feedback_terms = 5;      // words it adds, at most
  float feedback_weight = 0.25f;         // of the feedback list in fusion
  float high_mmr_lambda = 0.8f;          // relevance share; 1: no MMR
  // temporal Mid: the weight of the list of candidates in the window.
  float window_weight = 1;
  // expand Mid: the neighbouring turns (same session) of the best hits.
  std::uint32_t expand_hits = 5;    // hits whose neighbours are added
  std::uint32_t expand_radius = 1;  // turns each side
  // compress Mid: the context's token budget.
  std::uint32_t context_tokens = 256;
  // Budget "auto" (the router plugin): the price of cost against quality a
  // tenant's policy does not set ([router] lambda), and the tier a query
  // runs at when no router answers.
  float lambda = 0.3f;
  CostTier default_tier = CostTier::mid;
};

struct PluginsConfig {
  // Folders searched for NAME.plugin.toml manifests (and their subfolders).
  // Empty: next to memosd, ../plugins and ../lib/memosd/plugins.
  std::vector<std::string> paths;
  std::string embedder = "hash-embedder";
  std::string dense = "faiss-retriever";
  std::string lexical = "xapian-retriever";
  std::string hybrid = "hybrid-fuser";
  // Chooses the tiers of budget "auto" (memos(7), "Routing"); empty: none,
  // and "auto" runs at routing.default_tier.
  std::string router = "router-policy";
  std::uint32_t call_timeout_ms = 10000;
  std::string host;               // memos-plugin-host; empty: beside memosd
  std::uint32_t max_crashes = 3;  // within crash_window_s, then quarantine
  std::uint32_t crash_window_s = 60;
  // Memory one memos-plugin-host may use (MB), so that a plugin allocating
  // without bound fails its own allocations instead of exhausting the
  // machine. 0: half the machine's physical memory.
  std::uint64_t host_memory_mb = 0;
  // [plugins.settings.NAME]: settings given to plugin NAME's create(), over
  // those of its manifest (values as text).
  std::map<std::string, std::map<std::string, std::string>> settings;
};

// The model executor (memos(7), "tiers"): a plugin running one model, used
// by chat and the activation tier. No model: chat and kv are refused.
struct ExecutorConfig {
  std::string plugin = "llama-executor";
  std::string model;  // a GGUF file; empty: no executor
  // [executor.models]: the model a chat's answer module runs at each cost
  // tier (memos(7), "Routing"), by CostTier; empty: executor.model answers
  // at that tier. Each other file runs in an executor of its own, with
  // the limits below; executor.model's serves the activation tier,
  // adapters and the model tiers of the memory modules.
  std::array<std::string, 3> models;
  std::uint32_t threads = 0;                // 0: one per CPU
  std::uint32_t context = 4096;             // tokens (clamped by the plugin to the model's)
  std::uint32_t batch = 512;                // tokens per decode
  std::string kv_type = "f16";              // f16, f32 or q8_0
  std::uint32_t call_timeout_ms = 600000;   // a long prefill on a slow CPU
  std::uint32_t start_timeout_ms = 120000;  // loading (and hashing) a model
  std::uint32_t max_tokens = 1024;          // generated per chat, at most
  // Memory for the KV states of recent prompts the executor keeps for the
  // next chat of the same tenant that shares a prefix (the working set's,
  // or the same question again); 0: none.
  std::uint64_t prompt_cache_mb = 256;
  std::uint64_t max_adapter_mb = 512;  // adapters the executor keeps loaded
  // Where the model runs: auto (the first GPU that answers, else the CPU),
  // cpu, gpu, gpu:N; and on a GPU, the layers kept in its memory (-1: all).
  std::string device = "auto";
  std::int32_t gpu_layers = -1;
};

// Which of a tenant's stored states makes room for a new one: the least
// useful (kernel/scheduler/activation_utility.h: hit rate × prefill time
// saved ÷ bytes) or the least recently used.
enum class ActivationEviction { utility, lru };

// The activation tier: stored KV states of memory blocks.
struct ActivationConfig {
  std::uint32_t chunk_tokens = 64;   // states are found by prefixes of whole chunks
  std::uint64_t resident_mb = 1024;  // states kept in the executor's memory (LRU)
  // On a GPU: page-locked host memory the executor stages states in (the
  // resident ones and each read), so a restore is a DMA from it.
  std::uint64_t pinned_mb = 1280;
  // Resident states kept in the executor's KV cache on its device (a GPU's
  // memory): each takes a context's worth of cells; restored by a copy
  // within the device. 0 (the default): none.
  std::uint64_t gpu_max_mb = 0;
  std::uint64_t tenant_max_mb = 8192;  // on disk per tenant; `eviction` says which go first
  std::uint64_t max_state_mb = 200;    // a larger state is not stored
  ActivationEviction eviction = ActivationEviction::utility;
  // A state's hit rate halves for each this long it goes unused.
  std::uint32_t eviction_half_life_s = 3600;
};

// "utility" or "lru"; nullopt for anything else.
std::optional<ActivationEviction> parse_activation_eviction(std::string_view name);
const char* to_string(ActivationEviction eviction);

// The scheduler (memos(7), "Scheduling"; kernel/scheduler/): the defaults
// of what it does for each tenant, which a policy's [scheduler] table may
// override, and its own pace.
struct SchedulerConfig {
  policies::SchedulerSettings defaults;
  std::uint32_t interval_s = 60;     // between passes (memctl sched run: now)
  std::uint32_t log_entries = 4096;  // decisions kept for memctl sched log
};

// Metrics (memctl(1) "metrics"): the same Prometheus text written to a
// file every interval, atomically, for node_exporter's textfile collector.
struct MetricsConfig {
  std::string textfile;           // empty: none written
  std::uint32_t interval_s = 15;  // between writes
};

// Cluster mode (memos-cluster(7), docs/scale-out.md): the store replicated
// through a NATS JetStream log, the node that writes it chosen by an etcd
// lease; any node answers reads. Off (the default): one node, its writes
// fsynced locally.
struct ClusterConfig {
  bool enabled = false;
  std::string name = "memos";     // names the log's stream, its subjects and the etcd keys
  std::string node_id;            // unique in the cluster and stable across restarts
  std::vector<std::string> nats;  // "nats://host:port" or "tls://host:port", tried in order
  std::vector<std::string> etcd;  // "http://host:port" or "https://host:port", tried in order
  // TLS to both engines (cluster_tls()): the CA that signs their servers'
  // certificates ("": the system's), and this node's certificate and key,
  // shown to servers that verify clients (mutual TLS). PEM files.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::uint32_t replicas = 3;     // of the log's stream, when this node creates it
  std::uint32_t lease_ms = 3000;  // an owner's lease: a failover takes about this long
  // The cubes' shards (docs/scale-out.md, "Shards"): each has its own owner,
  // lease and subject of the log. Fixed when the cluster is made (kept in
  // etcd; a node configured otherwise refuses to start). 0: the cluster's
  // count; when this node makes the cluster, its store's if it has issued
  // ids, else 16 (kDefaultClusterShards); the daemon sets it to the count
  // agreed before it opens the store (agree_on_shards()).
  std::uint32_t shards = 0;
  // A follower fetches each blob as it applies the record that references
  // it (kernel/blob_prefetch.h); off, a node fetches a blob on first use.
  bool prefetch_blobs = false;
  // Index snapshots shared through the cluster's index bucket
  // (docs/scale-out.md, "Index snapshots"): every this many seconds the
  // owner of a shard shares the collections of its cubes that hold at
  // least index_share_min_items items and changed by a tenth since; 0: no
  // node shares (nodes still take what others share).
  std::uint32_t index_share_s = 300;
  std::uint64_t index_share_min_items = 1000;
  // Log compaction (docs/scale-out.md, "Log compaction"): every this many
  // seconds the owner of shard 0 publishes a snapshot of its store to the
  // cluster's snapshot bucket; 0: this node never does (and never compacts).
  std::uint32_t store_snapshot_s = 21600;
  // The log keeps every record for at least this long; older ones that a
  // published snapshot covers are removed when one is published (a node
  // down longer starts from the snapshot).
  std::uint32_t log_retention_s = 259200;
  // After compacting, the same node removes from the blob bucket the KV
  // states and adapters no record references any more, once untouched for
  // this many seconds (a node takes a blob as shared for a sixth of it
  // without asking); 0: the bucket keeps every blob.
  std::uint32_t blob_grace_s = 3600;
};

// How the log is written on stderr (log_output.h).
enum class LogFormat { text, json };

// The options given on memosd's command line that set keys; empty: not
// given. They win over the file, at start and at every SIGHUP reload.
struct CommandLineKeys {
  std::string socket;
  std::string data_dir;
  std::string log_level;
  std::string policies_dir;
};

struct Config {
  std::string path;      // the file it was read from, if any (SIGHUP re-reads it)
  std::string socket;    // empty: ipc::default_socket_path()
  std::string data_dir;  // empty: default_data_dir()
  // The tenant policy folder (memos-policy(5)). Empty: tenants.d beside
  // the configuration file, if it exists (default_policies_dir()); a
  // folder named here must exist.
  std::string policies_dir;
  std::string log_level = "info";
  LogFormat log_format = LogFormat::text;
  CommandLineKeys command_line;
  std::uint32_t worker_threads = 0;  // 0: one per CPU, at least 2
  // Workers serve waiting requests by weighted fair queueing across
  // tenants (fair_queue.h); false: in arrival order (for comparison).
  bool fair_scheduling = true;
  std::uint32_t shutdown_timeout_ms = 10000;
  IpcConfig ipc;
  StoreConfig store;
  SearchConfig search;
  RoutingConfig routing;
  PluginsConfig plugins;
  ExecutorConfig executor;
  ActivationConfig activation;
  SchedulerConfig scheduler;
  MetricsConfig metrics;
  ClusterConfig cluster;
};

// Reads and validates `path` over `config` (keys absent from the file keep
// their current values). Returns an empty string on success, else one error
// naming the file, line and column: a syntax error, an unknown key, a value
// of the wrong type or out of its range; or that `path` is empty, missing,
// not a regular file (a folder, /dev/zero) or over 1 MiB.
std::string load_config_file(const std::string& path, Config* config);

// Validates values set from any source. Returns "" or an error message.
std::string validate_config(const Config& config);

// Whether the node speaks TLS to the engines: a cluster.tls_* key is set,
// or a server is named tls:// or https://. Both engines then (etcd's
// endpoints must be https://).
bool cluster_tls(const ClusterConfig& config);

// Sets the keys the command line gave (config->command_line) over the
// file's values.
void apply_command_line(Config* config);

// The worker pool's thread count: worker_threads, or one per CPU (at
// least 2) when it is 0.
unsigned worker_thread_count(const Config& config);

// Replaces the defaults that depend on the machine, written as empty values
// (socket, data_dir, plugins.paths, plugins.host), by what they stand for,
// so that the configuration reads as the daemon runs it.
void resolve_defaults(Config* config);

// The configuration as a memosd.conf: every key, in TOML that
// load_config_file() reads back to the same configuration (once
// resolve_defaults() has filled the empty paths, which the file refuses).
std::string config_to_toml(const Config& config);

// The keys (as written in memosd.conf, "ipc.max_connections") whose values
// differ between `a` and `b`, in the file's order.
std::vector<std::string> changed_keys(const Config& a, const Config& b);

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view name);
const char* to_string(LogFormat format);

// Checks that the files the configuration names exist and can be read
// (executor.model), as `memosd --check-config` promises. Returns "" or an
// error naming the key and the file. The running daemon need not call it:
// loading the file reports the same, with more detail.
std::string check_named_files(const Config& config);

// $XDG_DATA_HOME/memosd (default ~/.local/share/memosd); /var/lib/memosd as root.
std::string default_data_dir();

// Where plugins are looked for when plugins.paths is empty: ../plugins and
// ../lib/memosd/plugins from memosd's folder (the build tree and the
// installed layout). Empty if /proc/self/exe cannot be read.
std::vector<std::string> default_plugin_paths();

// memos-plugin-host when plugins.host is empty: beside memosd (the build
// tree), else ../lib/memosd/ from memosd's folder (installed).
std::string default_plugin_host();

}  // namespace memos::kernel
