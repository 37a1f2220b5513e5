/* memos_results.h — the values the C API's calls return (memos.h, memos.h(3)).
 *
 * Included by memos/memos.h, which documents how results are owned (one
 * allocation each, freed by memos_free) and read (memos_str: a pointer never
 * NULL and NUL-terminated, with a length; arrays: a pointer and an n_ count;
 * lists: data and count). Each struct mirrors a type of the C++ SDK
 * (memos/types.h, routing.h, scheduling.h), whose comments say what each
 * field means. Include memos/memos.h, not this header.
 */
#ifndef MEMOS_MEMOS_RESULTS_H
#define MEMOS_MEMOS_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- values in results ----------------------------------------------------- */

typedef struct memos_str {
  const char* ptr; /* never NULL; NUL-terminated */
  size_t len;
} memos_str;

/* The vocabulary (memos(7)). Results hold these as int. */
enum memos_tier { MEMOS_TIER_PLAINTEXT, MEMOS_TIER_ACTIVATION, MEMOS_TIER_PARAMETRIC };
enum memos_state {
  MEMOS_STATE_ACTIVE,
  MEMOS_STATE_ARCHIVED,
  MEMOS_STATE_FROZEN,
  MEMOS_STATE_DELETED
};
enum memos_search_mode { MEMOS_MODE_DENSE, MEMOS_MODE_LEXICAL, MEMOS_MODE_HYBRID };
enum memos_cost_tier { MEMOS_COST_LOW, MEMOS_COST_MID, MEMOS_COST_HIGH };
enum memos_module {
  MEMOS_MODULE_RETRIEVE,
  MEMOS_MODULE_TEMPORAL,
  MEMOS_MODULE_EXPAND,
  MEMOS_MODULE_COMPRESS,
  MEMOS_MODULE_ANSWER
};
/* The four memory modules a route sets (MEMOS_MODULE_RETRIEVE..COMPRESS). */
#define MEMOS_ROUTE_MODULES 4
enum memos_plugin_state { MEMOS_PLUGIN_LISTED, MEMOS_PLUGIN_LOADED, MEMOS_PLUGIN_FAILED };
enum memos_change_kind { MEMOS_CHANGE_ADDED, MEMOS_CHANGE_REMOVED, MEMOS_CHANGE_CHANGED };

typedef struct memos_meta {
  memos_str key, value;
} memos_meta;

/* A parametric item's adapter (types.h, ParamInfo). */
typedef struct memos_param_info {
  memos_str kind, name, digest;
  uint64_t bytes;
  float scale;
  memos_str base_model, architecture;
  uint32_t tensors, rank;
  float alpha;
  memos_str origin;
} memos_param_info;

/* One version of a memory item (types.h, Item). */
typedef struct memos_item {
  uint64_t id; /* memos_format_id() writes its text form */
  uint32_t version;
  memos_str text;
  const memos_str* tags;
  size_t n_tags;
  const memos_meta* meta;
  size_t n_meta;
  int64_t created_at_ms, recorded_at_ms;
  int deleted; /* this version is a tombstone */
  int tier;    /* enum memos_tier */
  int state;   /* enum memos_state */
  float importance;
  int64_t expires_at_ms; /* 0: never */
  int64_t valid_from_ms, valid_to_ms;
  uint32_t writer_uid;
  memos_str session_id;
  const uint64_t* sources;
  size_t n_sources;
  uint64_t cube_version, hits;
  int64_t last_access_ms;
  const memos_param_info* param; /* NULL unless a parametric item */
} memos_item;

typedef struct memos_items {
  const memos_item* data;
  size_t count;
} memos_items;

typedef struct memos_meta_change {
  memos_str key;
  int has_before, has_after; /* 0: the key is absent on that side */
  memos_str before, after;
} memos_meta_change;

typedef struct memos_item_diff {
  memos_item from, to;
  int text_changed;
  const memos_str* tags_added;
  size_t n_tags_added;
  const memos_str* tags_removed;
  size_t n_tags_removed;
  const memos_meta_change* meta_changes;
  size_t n_meta_changes;
  int state_changed, validity_changed;
} memos_item_diff;

typedef struct memos_cube_grant {
  memos_str tenant;
  uint32_t uid;
  int write;
  int64_t granted_at_ms;
} memos_cube_grant;

typedef struct memos_cube {
  uint64_t id;
  memos_str name;
  uint32_t owner_uid;
  int64_t created_at_ms;
  memos_str embedder;
  uint32_t dimension;
  uint64_t live_items, head_version;
  int default_retriever; /* enum memos_search_mode */
  memos_str language, indexes;
  memos_str shared_by; /* another tenant's cube: its owner; else "" */
  int shared_write;
  const memos_cube_grant* shares;
  size_t n_shares;
} memos_cube;

typedef struct memos_cubes {
  const memos_cube* data;
  size_t count;
} memos_cubes;

typedef struct memos_snapshot {
  memos_str tag;
  uint64_t cube_version;
  int64_t created_at_ms;
  uint64_t live_items;
  uint32_t created_by;
} memos_snapshot;

typedef struct memos_snapshots {
  const memos_snapshot* data;
  size_t count;
} memos_snapshots;

typedef struct memos_snapshot_change {
  uint64_t item_id;
  int kind; /* enum memos_change_kind */
  uint32_t from_version, to_version;
  memos_str text;
} memos_snapshot_change;

typedef struct memos_snapshot_changes {
  const memos_snapshot_change* data;
  size_t count;
} memos_snapshot_changes;

typedef struct memos_rank {
  int retriever; /* enum memos_search_mode; hybrid: the fused list */
  uint32_t rank; /* 1-based; 0: not among its candidates */
  float score;
} memos_rank;

typedef struct memos_hit {
  memos_item item;
  float score;
  memos_str cube;
  const memos_rank* ranks; /* with memos_search_options.explain */
  size_t n_ranks;
} memos_hit;

typedef struct memos_hits {
  const memos_hit* data;
  size_t count;
} memos_hits;

typedef struct memos_module_run {
  int module; /* enum memos_module */
  int tier;   /* enum memos_cost_tier */
  double ms;
  memos_str detail;
} memos_module_run;

typedef struct memos_route_score {
  memos_str route;
  float quality, cost, score;
} memos_route_score;

typedef struct memos_feature {
  memos_str name;
  float value;
} memos_feature;

typedef struct memos_router_choice {
  memos_str source, reason;
  int route[MEMOS_ROUTE_MODULES]; /* enum memos_cost_tier, by enum memos_module */
  double ms;
  const memos_feature* features;
  size_t n_features;
  const float* vector;
  size_t n_vector;
  const memos_route_score* scores;
  size_t n_scores;
} memos_router_choice;

typedef struct memos_context_piece {
  memos_str cube;
  uint64_t item_id;
  memos_str text;
  uint32_t tokens;
  uint64_t neighbour_of;
} memos_context_piece;

typedef struct memos_routed_search {
  const memos_hit* hits;
  size_t n_hits;
  const memos_context_piece* context;
  size_t n_context;
  uint32_t context_tokens;
  const memos_module_run* modules;
  size_t n_modules;
  const memos_router_choice* router; /* NULL: not reported */
} memos_routed_search;

typedef struct memos_plugin_info {
  memos_str name;
  const memos_str* kinds;
  size_t n_kinds;
  int state; /* enum memos_plugin_state */
  memos_str detail, health;
  int isolated;
  memos_str library, manifest;
  const memos_meta* capabilities;
  size_t n_capabilities;
  const memos_meta* settings;
  size_t n_settings;
} memos_plugin_info;

typedef struct memos_plugins {
  const memos_plugin_info* data;
  size_t count;
} memos_plugins;

typedef struct memos_status {
  memos_str version;
  uint32_t pid;
  int64_t uptime_ms;
  uint32_t tenant_uid, cubes, connections;
  uint64_t requests_served;
  memos_str data_dir, socket;
  const memos_plugin_info* plugins;
  size_t n_plugins;
  int admin;
  uint64_t index_backlog;
  double index_oldest_ms, freshness_p50_ms, freshness_p99_ms;
  uint64_t scheduler_passes;
  int64_t scheduler_last_pass_ms;
  uint32_t scheduler_working_sets, scheduler_prefills_pending;
  /* The executor (executor.device): "CPU" or the GPU's name, "" none. */
  memos_str executor_device, executor_device_description, executor_device_note;
  uint32_t executor_gpu_layers, executor_layers;
  uint64_t executor_device_memory_bytes;
} memos_status;

/* A cluster as the node asked sees it (memos-cluster(7)); enabled 0: one node. */
typedef struct memos_shard_status {
  uint32_t shard;
  memos_str owner; /* "" none now: a failover is under way */
  uint64_t last_sequence;
  memos_str note; /* why a figure is missing */
} memos_shard_status;

typedef struct memos_node_status {
  memos_str node;
  int answered; /* 0: on the roster but silent; note says why */
  memos_str note;
  int owner;
  uint64_t position, behind, appended, applied;
} memos_node_status;

/* The object store bucket of the cluster's KV states and adapters. */
typedef struct memos_bucket_status {
  memos_str name; /* MEMOS_<cluster.name>_BLOBS */
  uint64_t blobs; /* blobs in it */
  uint64_t bytes; /* what it stores, on each replica */
  memos_str note; /* why the figures are missing */
} memos_bucket_status;

/* Log compaction (since 1.1): the newest store snapshot a node published,
 * and how far each shard's log was compacted. */
typedef struct memos_compaction_status {
  memos_str snapshot_node;   /* "" none published yet */
  uint64_t snapshot_time_ms; /* when its copy began, ms since the epoch */
  uint64_t snapshot_bytes;
  const uint64_t* floor; /* [n_floor], per shard: no record at or below it (0: none removed) */
  size_t n_floor;
  memos_str note; /* why a figure is missing */
} memos_compaction_status;

/* One of the log's replicas other than its leader (since 1.3). */
typedef struct memos_log_replica {
  memos_str server;   /* the nats-server's name */
  int current;        /* holds what the leader holds */
  int offline;        /* the leader cannot reach it */
  uint64_t active_ms; /* since the leader last heard from it */
  uint64_t lag;       /* operations it is behind the leader */
} memos_log_replica;

/* The log's stream (since 1.3): the nats-server that leads its replicas,
 * through which every write is appended, and how the others keep up. */
typedef struct memos_log_status {
  memos_str stream; /* MEMOS_<cluster.name> */
  memos_str leader; /* "" while its replicas elect one */
  const memos_log_replica* replicas;
  size_t n_replicas;
  memos_str note;            /* why the figures are missing */
  memos_str previous_leader; /* memos_cluster_step_down: the leader that stepped down */
} memos_log_status;

typedef struct memos_cluster_status {
  int enabled;
  memos_str name, node;
  uint32_t replicas, lease_ms;
  const memos_shard_status* shards;
  size_t n_shards;
  const memos_node_status* nodes;
  size_t n_nodes;
  memos_bucket_status bucket;
  memos_compaction_status compaction; /* since 1.1 */
  /* Since 1.2 (here, not in memos_node_status, whose size an older caller
   * indexes by): node_policies[i] is nodes[i]'s tenant policy digest, 64 hex
   * digits, "" unknown; n_node_policies == n_nodes. policies_differ: a node
   * that answered enforces other tenant policies than the node asked. */
  const memos_str* node_policies;
  size_t n_node_policies;
  int policies_differ;
  memos_log_status log; /* since 1.3 */
} memos_cluster_status;

typedef struct memos_policy_info {
  memos_str tenant, file, text, folder;
  uint32_t tenants;
  int admin;
  uint32_t stored_under;
} memos_policy_info;

typedef struct memos_usage_bound {
  memos_str name;
  uint64_t limit, used;
} memos_usage_bound;

typedef struct memos_tenant_usage {
  memos_str tenant;
  uint32_t stored_under;
  uint64_t cubes, items, text_bytes, activation_items, activation_bytes;
  const memos_usage_bound* bounds;
  size_t n_bounds;
  uint64_t param_bytes, router_tokens;
} memos_tenant_usage;

typedef struct memos_job {
  uint64_t id;
  memos_str kind, cube, name, state; /* state: queued, running, done, failed, cancelled */
  uint32_t done, total;
  float loss;
  memos_str message;
  int64_t created_at_ms, started_at_ms, finished_at_ms;
  uint64_t item;
  uint32_t version, memories, tokens;
} memos_job;

typedef struct memos_jobs {
  const memos_job* data;
  size_t count;
} memos_jobs;

typedef struct memos_activation {
  uint64_t id;
  memos_str cube, model, model_hash, kv_type;
  uint32_t tokens;
  uint64_t bytes;
  const uint64_t* sources;
  size_t n_sources;
  int64_t created_at_ms, last_used_ms;
  uint64_t uses;
  double prefill_ms;
} memos_activation;

typedef struct memos_activations {
  const memos_activation* data;
  size_t count;
} memos_activations;

typedef struct memos_kv_stats {
  memos_str model, model_hash, kv_type;
  uint32_t context_tokens, chunk_tokens;
  uint64_t items, bytes, tenant_max_bytes;
  uint32_t resident_states;
  uint64_t resident_bytes, resident_budget_bytes, resident_hits, resident_misses;
  uint64_t rejected_states;
  uint32_t prompts_held;
  uint64_t prompt_hits, prompt_hit_tokens;
  uint32_t adapters_loaded;
  uint64_t adapter_bytes, adapter_budget_bytes, adapter_loads;
  /* Where the executor runs, and where its resident states live. */
  memos_str device, device_description;
  uint32_t gpu_layers, layers;
  uint64_t device_free_bytes, device_total_bytes;
  uint32_t resident_pinned_states;
  uint64_t resident_pinned_bytes, pinned_bytes, pinned_budget_bytes;
  uint64_t device_budget_bytes;
  uint32_t device_states;
  uint64_t device_state_bytes, device_state_hits;
} memos_kv_stats;

typedef struct memos_chat_reply {
  memos_str text;
  const uint64_t* memories;
  size_t n_memories;
  uint32_t prompt_tokens, block_tokens, reused_tokens, cached_tokens, generated_tokens;
  int restored, stored;           /* the activation outcome */
  memos_str rejected, not_stored; /* non-empty: why a state was refused, or not stored */
  uint64_t activation;
  double restore_ms, prefill_ms, first_token_ms, total_ms;
  memos_str finish;
  int resident;
  memos_str format;
  double saved_ms;
  const memos_str* adapters;
  size_t n_adapters;
  const memos_module_run* modules;
  size_t n_modules;
  const memos_router_choice* router; /* NULL: not reported */
} memos_chat_reply;

/* A piece of a streamed chat; valid during the callback only. */
typedef struct memos_chat_piece {
  memos_str text;
  uint32_t prefill_done, prefill_total;
} memos_chat_piece;

typedef struct memos_sched_pass {
  int64_t at_ms;
  double took_ms;
  uint32_t cubes, working_sets, promoted, demoted, archived, prefills_queued, distillations;
} memos_sched_pass;

typedef struct memos_cube_schedule {
  memos_str cube;
  uint64_t generation;
  const uint64_t* items;
  size_t n_items;
  uint32_t estimated_tokens, block_tokens;
  uint64_t state;
  int prefill_pending;
  uint64_t chats, restores, prompt_tokens, reused_tokens;
  int64_t updated_at_ms;
} memos_cube_schedule;

typedef struct memos_sched_status {
  int enabled;
  uint32_t interval_s;
  uint64_t passes;
  memos_sched_pass last_pass;
  uint32_t background_pending, foreground_pending;
  const memos_cube_schedule* cubes;
  size_t n_cubes;
  memos_str settings;
} memos_sched_status;

typedef struct memos_sched_decision {
  int64_t at_ms;
  memos_str cube;
  uint64_t item;
  memos_str action, reason;
} memos_sched_decision;

typedef struct memos_sched_decisions {
  const memos_sched_decision* data;
  size_t count;
} memos_sched_decisions;

typedef struct memos_explanation {
  memos_item item;
  double strength, recalls;
  int64_t last_recall_ms;
  double retention, score;
  memos_str time_unit;
  int in_working_set;
  uint32_t position;
  uint64_t working_set_state;
  const uint64_t* activations;
  size_t n_activations;
  int64_t archive_at_ms;
  int archived_by_scheduler;
} memos_explanation;

#ifdef __cplusplus
}
#endif

#endif /* MEMOS_MEMOS_RESULTS_H */
