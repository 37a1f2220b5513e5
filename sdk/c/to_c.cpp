// sdk/c/to_c.cpp — each C++ result type field by field into its C struct.
#include "sdk/c/to_c.h"

#include <cstdint>

namespace memos::c_api {
namespace {

// A vector as a C array in the arena: `data` and `n` set, each element
// filled by `each(arena, c_element, element)`.
template <class C, class T, class Each>
void array(Arena& a, const std::vector<T>& in, const C*& data, std::size_t& n, Each each) {
  C* out = a.array<C>(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) each(a, out[i], in[i]);
  data = out;
  n = in.size();
}

template <class C, class T>
void array(Arena& a, const std::vector<T>& in, const C*& data, std::size_t& n) {
  array(a, in, data, n, [](Arena& arena, C& c, const T& v) { fill(arena, c, v); });
}

void strings(Arena& a, const std::vector<std::string>& in, const memos_str*& data, std::size_t& n) {
  array(a, in, data, n, [](Arena& arena, memos_str& c, const std::string& v) { c = arena.str(v); });
}

template <class T>
void numbers(Arena& a, const std::vector<T>& in, const T*& data, std::size_t& n) {
  array(a, in, data, n, [](Arena&, T& c, const T& v) { c = v; });
}

void metas(Arena& a, const std::vector<MetaEntry>& in, const memos_meta*& data, std::size_t& n) {
  array(a, in, data, n, [](Arena& arena, memos_meta& c, const MetaEntry& v) {
    c.key = arena.str(v.key);
    c.value = arena.str(v.value);
  });
}

// A list result: its `data` and `count`.
template <class List, class T>
void list(Arena& a, List& out, const std::vector<T>& in) {
  array(a, in, out.data, out.count);
}

void fill_param(Arena& a, memos_param_info& out, const ParamInfo& in) {
  out.kind = a.str(in.kind);
  out.name = a.str(in.name);
  out.digest = a.str(in.digest);
  out.bytes = in.bytes;
  out.scale = in.scale;
  out.base_model = a.str(in.base_model);
  out.architecture = a.str(in.architecture);
  out.tensors = in.tensors;
  out.rank = in.rank;
  out.alpha = in.alpha;
  out.origin = a.str(in.origin);
}

void fill_module(Arena& a, memos_module_run& out, const ModuleRun& in) {
  out.module = static_cast<int>(in.module);
  out.tier = static_cast<int>(in.tier);
  out.ms = in.ms;
  out.detail = a.str(in.detail);
}

const memos_router_choice* router_choice(Arena& a, const std::optional<RouterChoice>& in) {
  if (!in) return nullptr;
  auto* out = a.array<memos_router_choice>(1);
  out->source = a.str(in->source);
  out->reason = a.str(in->reason);
  for (std::size_t m = 0; m < MEMOS_ROUTE_MODULES; ++m)
    out->route[m] = static_cast<int>(in->route.tiers[m]);
  out->ms = in->ms;
  array(a, in->features, out->features, out->n_features,
        [](Arena& arena, memos_feature& c, const std::pair<std::string, float>& v) {
          c.name = arena.str(v.first);
          c.value = v.second;
        });
  numbers(a, in->vector, out->vector, out->n_vector);
  array(a, in->scores, out->scores, out->n_scores,
        [](Arena& arena, memos_route_score& c, const RouteScore& v) {
          c.route = arena.str(v.route);
          c.quality = v.quality;
          c.cost = v.cost;
          c.score = v.score;
        });
  return out;
}

void fill_hit(Arena& a, memos_hit& out, const Hit& in) {
  fill(a, out.item, in.item);
  out.score = in.score;
  out.cube = a.str(in.cube);
  array(a, in.ranks, out.ranks, out.n_ranks, [](Arena&, memos_rank& c, const Rank& v) {
    c.retriever = static_cast<int>(v.retriever);
    c.rank = v.rank;
    c.score = v.score;
  });
}

}  // namespace

void fill(Arena& a, memos_item& out, const Item& in) {
  out.id = in.id;
  out.version = in.version;
  out.text = a.str(in.text);
  strings(a, in.tags, out.tags, out.n_tags);
  metas(a, in.meta, out.meta, out.n_meta);
  out.created_at_ms = in.created_at_ms;
  out.recorded_at_ms = in.recorded_at_ms;
  out.deleted = in.deleted;
  out.tier = static_cast<int>(in.tier);
  out.state = static_cast<int>(in.state);
  out.importance = in.importance;
  out.expires_at_ms = in.expires_at_ms;
  out.valid_from_ms = in.valid_from_ms;
  out.valid_to_ms = in.valid_to_ms;
  out.writer_uid = in.writer_uid;
  out.session_id = a.str(in.session_id);
  numbers(a, in.sources, out.sources, out.n_sources);
  out.cube_version = in.cube_version;
  out.hits = in.hits;
  out.last_access_ms = in.last_access_ms;
  if (in.param) {
    auto* param = a.array<memos_param_info>(1);
    fill_param(a, *param, *in.param);
    out.param = param;
  }
}

void fill(Arena& a, memos_items& out, const std::vector<Item>& in) {
  list(a, out, in);
}

void fill(Arena& a, memos_item_diff& out, const ItemDiff& in) {
  fill(a, out.from, in.from);
  fill(a, out.to, in.to);
  out.text_changed = in.text_changed;
  strings(a, in.tags_added, out.tags_added, out.n_tags_added);
  strings(a, in.tags_removed, out.tags_removed, out.n_tags_removed);
  array(a, in.meta_changes, out.meta_changes, out.n_meta_changes,
        [](Arena& arena, memos_meta_change& c, const MetaChange& v) {
          c.key = arena.str(v.key);
          c.has_before = v.before.has_value();
          c.has_after = v.after.has_value();
          c.before = arena.str(v.before.value_or(""));
          c.after = arena.str(v.after.value_or(""));
        });
  out.state_changed = in.state_changed;
  out.validity_changed = in.validity_changed;
}

void fill(Arena& a, memos_cube& out, const Cube& in) {
  out.id = in.id;
  out.name = a.str(in.name);
  out.owner_uid = in.owner_uid;
  out.created_at_ms = in.created_at_ms;
  out.embedder = a.str(in.embedder);
  out.dimension = in.dimension;
  out.live_items = in.live_items;
  out.head_version = in.head_version;
  out.default_retriever = static_cast<int>(in.default_retriever);
  out.language = a.str(in.language);
  out.indexes = a.str(in.indexes);
  out.shared_by = a.str(in.shared_by);
  out.shared_write = in.shared_write;
  array(a, in.shares, out.shares, out.n_shares,
        [](Arena& arena, memos_cube_grant& c, const CubeGrant& v) {
          c.tenant = arena.str(v.tenant);
          c.uid = v.uid;
          c.write = v.write;
          c.granted_at_ms = v.granted_at_ms;
        });
}

void fill(Arena& a, memos_cubes& out, const std::vector<Cube>& in) {
  list(a, out, in);
}

void fill(Arena& a, memos_snapshot& out, const Snapshot& in) {
  out.tag = a.str(in.tag);
  out.cube_version = in.cube_version;
  out.created_at_ms = in.created_at_ms;
  out.live_items = in.live_items;
  out.created_by = in.created_by;
}

void fill(Arena& a, memos_snapshots& out, const std::vector<Snapshot>& in) {
  list(a, out, in);
}

void fill(Arena& a, memos_snapshot_changes& out, const std::vector<SnapshotChange>& in) {
  array(a, in, out.data, out.count,
        [](Arena& arena, memos_snapshot_change& c, const SnapshotChange& v) {
          c.item_id = v.item_id;
          c.kind = static_cast<int>(v.kind);
          c.from_version = v.from_version;
          c.to_version = v.to_version;
          c.text = arena.str(v.text);
        });
}

void fill(Arena& a, memos_hits& out, const std::vector<Hit>& in) {
  array(a, in, out.data, out.count, fill_hit);
}

void fill(Arena& a, memos_routed_search& out, const RoutedSearch& in) {
  array(a, in.hits, out.hits, out.n_hits, fill_hit);
  array(a, in.context, out.context, out.n_context,
        [](Arena& arena, memos_context_piece& c, const ContextPiece& v) {
          c.cube = arena.str(v.cube);
          c.item_id = v.item_id;
          c.text = arena.str(v.text);
          c.tokens = v.tokens;
          c.neighbour_of = v.neighbour_of;
        });
  out.context_tokens = in.context_tokens;
  array(a, in.modules, out.modules, out.n_modules, fill_module);
  out.router = router_choice(a, in.router);
}

void fill(Arena& a, memos_str& out, const std::string& in) {
  out = a.str(in);
}

void fill(Arena& a, memos_plugin_info& out, const PluginInfo& in) {
  out.name = a.str(in.name);
  strings(a, in.kinds, out.kinds, out.n_kinds);
  out.state = static_cast<int>(in.state);
  out.detail = a.str(in.detail);
  out.health = a.str(in.health);
  out.isolated = in.isolated;
  out.library = a.str(in.library);
  out.manifest = a.str(in.manifest);
  metas(a, in.capabilities, out.capabilities, out.n_capabilities);
  metas(a, in.settings, out.settings, out.n_settings);
}

void fill(Arena& a, memos_plugins& out, const std::vector<PluginInfo>& in) {
  list(a, out, in);
}

void fill(Arena& a, memos_cluster_status& out, const ClusterStatus& in) {
  out.enabled = in.enabled;
  out.name = a.str(in.name);
  out.node = a.str(in.node);
  out.replicas = in.replicas;
  out.lease_ms = in.lease_ms;
  array(a, in.shards, out.shards, out.n_shards,
        [](Arena& arena, memos_shard_status& c, const ShardStatus& v) {
          c.shard = v.shard;
          c.owner = arena.str(v.owner);
          c.last_sequence = v.last_sequence;
          c.note = arena.str(v.note);
        });
  array(a, in.nodes, out.nodes, out.n_nodes,
        [](Arena& arena, memos_node_status& c, const NodeStatus& v) {
          c.node = arena.str(v.node);
          c.answered = v.answered;
          c.note = arena.str(v.note);
          c.owner = v.owner;
          c.position = v.position;
          c.behind = v.behind;
          c.appended = v.appended;
          c.applied = v.applied;
        });
  out.bucket.name = a.str(in.bucket.name);
  out.bucket.blobs = in.bucket.blobs;
  out.bucket.bytes = in.bucket.bytes;
  out.bucket.note = a.str(in.bucket.note);
  out.compaction.snapshot_node = a.str(in.compaction.snapshot_node);
  out.compaction.snapshot_time_ms = in.compaction.snapshot_time_ms;
  out.compaction.snapshot_bytes = in.compaction.snapshot_bytes;
  numbers(a, in.compaction.floor, out.compaction.floor, out.compaction.n_floor);
  out.compaction.note = a.str(in.compaction.note);
  std::vector<std::string> policies;
  for (const NodeStatus& n : in.nodes) policies.push_back(n.policies);
  strings(a, policies, out.node_policies, out.n_node_policies);
  out.policies_differ = in.policies_differ;
  out.log.stream = a.str(in.log.stream);
  out.log.leader = a.str(in.log.leader);
  array(a, in.log.replicas, out.log.replicas, out.log.n_replicas,
        [](Arena& arena, memos_log_replica& c, const LogReplica& v) {
          c.server = arena.str(v.server);
          c.current = v.current;
          c.offline = v.offline;
          c.active_ms = v.active_ms;
          c.lag = v.lag;
        });
  out.log.note = a.str(in.log.note);
  out.log.previous_leader = a.str(in.log.previous_leader);
}

void fill(Arena& a, memos_status& out, const Status& in) {
  out.version = a.str(in.version);
  out.pid = in.pid;
  out.uptime_ms = in.uptime_ms;
  out.tenant_uid = in.tenant_uid;
  out.cubes = in.cubes;
  out.connections = in.connections;
  out.requests_served = in.requests_served;
  out.data_dir = a.str(in.data_dir);
  out.socket = a.str(in.socket);
  array(a, in.plugins, out.plugins, out.n_plugins);
  out.admin = in.admin;
  out.index_backlog = in.index_backlog;
  out.index_oldest_ms = in.index_oldest_ms;
  out.freshness_p50_ms = in.freshness_p50_ms;
  out.freshness_p99_ms = in.freshness_p99_ms;
  out.scheduler_passes = in.scheduler_passes;
  out.scheduler_last_pass_ms = in.scheduler_last_pass_ms;
  out.scheduler_working_sets = in.scheduler_working_sets;
  out.scheduler_prefills_pending = in.scheduler_prefills_pending;
  out.executor_device = a.str(in.executor_device);
  out.executor_device_description = a.str(in.executor_device_description);
  out.executor_device_note = a.str(in.executor_device_note);
  out.executor_gpu_layers = in.executor_gpu_layers;
  out.executor_layers = in.executor_layers;
  out.executor_device_memory_bytes = in.executor_device_memory_bytes;
}

void fill(Arena& a, memos_policy_info& out, const PolicyInfo& in) {
  out.tenant = a.str(in.tenant);
  out.file = a.str(in.file);
  out.text = a.str(in.text);
  out.folder = a.str(in.folder);
  out.tenants = in.tenants;
  out.admin = in.admin;
  out.stored_under = in.stored_under;
}

void fill(Arena& a, memos_tenant_usage& out, const TenantUsage& in) {
  out.tenant = a.str(in.tenant);
  out.stored_under = in.stored_under;
  out.cubes = in.cubes;
  out.items = in.items;
  out.text_bytes = in.text_bytes;
  out.activation_items = in.activation_items;
  out.activation_bytes = in.activation_bytes;
  array(a, in.bounds, out.bounds, out.n_bounds,
        [](Arena& arena, memos_usage_bound& c, const UsageBound& v) {
          c.name = arena.str(v.name);
          c.limit = v.limit;
          c.used = v.used;
        });
  out.param_bytes = in.param_bytes;
  out.router_tokens = in.router_tokens;
}

void fill(Arena& a, memos_job& out, const Job& in) {
  out.id = in.id;
  out.kind = a.str(in.kind);
  out.cube = a.str(in.cube);
  out.name = a.str(in.name);
  out.state = a.str(in.state);
  out.done = in.done;
  out.total = in.total;
  out.loss = in.loss;
  out.message = a.str(in.message);
  out.created_at_ms = in.created_at_ms;
  out.started_at_ms = in.started_at_ms;
  out.finished_at_ms = in.finished_at_ms;
  out.item = in.item;
  out.version = in.version;
  out.memories = in.memories;
  out.tokens = in.tokens;
}

void fill(Arena& a, memos_jobs& out, const std::vector<Job>& in) {
  list(a, out, in);
}

void fill(Arena& a, memos_activation& out, const Activation& in) {
  out.id = in.id;
  out.cube = a.str(in.cube);
  out.model = a.str(in.model);
  out.model_hash = a.str(in.model_hash);
  out.kv_type = a.str(in.kv_type);
  out.tokens = in.tokens;
  out.bytes = in.bytes;
  numbers(a, in.sources, out.sources, out.n_sources);
  out.created_at_ms = in.created_at_ms;
  out.last_used_ms = in.last_used_ms;
  out.uses = in.uses;
  out.prefill_ms = in.prefill_ms;
}

void fill(Arena& a, memos_activations& out, const std::vector<Activation>& in) {
  list(a, out, in);
}

void fill(Arena& a, memos_kv_stats& out, const KvStats& in) {
  out.model = a.str(in.model);
  out.model_hash = a.str(in.model_hash);
  out.kv_type = a.str(in.kv_type);
  out.context_tokens = in.context_tokens;
  out.chunk_tokens = in.chunk_tokens;
  out.items = in.items;
  out.bytes = in.bytes;
  out.tenant_max_bytes = in.tenant_max_bytes;
  out.resident_states = in.resident_states;
  out.resident_bytes = in.resident_bytes;
  out.resident_budget_bytes = in.resident_budget_bytes;
  out.resident_hits = in.resident_hits;
  out.resident_misses = in.resident_misses;
  out.rejected_states = in.rejected_states;
  out.prompts_held = in.prompts_held;
  out.prompt_hits = in.prompt_hits;
  out.prompt_hit_tokens = in.prompt_hit_tokens;
  out.adapters_loaded = in.adapters_loaded;
  out.adapter_bytes = in.adapter_bytes;
  out.adapter_budget_bytes = in.adapter_budget_bytes;
  out.adapter_loads = in.adapter_loads;
  out.device = a.str(in.device);
  out.device_description = a.str(in.device_description);
  out.gpu_layers = in.gpu_layers;
  out.layers = in.layers;
  out.device_free_bytes = in.device_free_bytes;
  out.device_total_bytes = in.device_total_bytes;
  out.resident_pinned_states = in.resident_pinned_states;
  out.resident_pinned_bytes = in.resident_pinned_bytes;
  out.pinned_bytes = in.pinned_bytes;
  out.pinned_budget_bytes = in.pinned_budget_bytes;
  out.device_budget_bytes = in.device_budget_bytes;
  out.device_states = in.device_states;
  out.device_state_bytes = in.device_state_bytes;
  out.device_state_hits = in.device_state_hits;
}

void fill(Arena& a, memos_chat_reply& out, const ChatReply& in) {
  out.text = a.str(in.text);
  numbers(a, in.memories, out.memories, out.n_memories);
  out.prompt_tokens = in.prompt_tokens;
  out.block_tokens = in.block_tokens;
  out.reused_tokens = in.reused_tokens;
  out.cached_tokens = in.cached_tokens;
  out.generated_tokens = in.generated_tokens;
  out.restored = in.activation_status.restored;
  out.stored = in.activation_status.stored;
  out.rejected = a.str(in.activation_status.rejected);
  out.not_stored = a.str(in.activation_status.not_stored);
  out.activation = in.activation;
  out.restore_ms = in.restore_ms;
  out.prefill_ms = in.prefill_ms;
  out.first_token_ms = in.first_token_ms;
  out.total_ms = in.total_ms;
  out.finish = a.str(in.finish);
  out.resident = in.resident;
  out.format = a.str(in.format);
  out.saved_ms = in.saved_ms;
  strings(a, in.adapters, out.adapters, out.n_adapters);
  array(a, in.modules, out.modules, out.n_modules, fill_module);
  out.router = router_choice(a, in.router);
}

void fill(Arena&, memos_sched_pass& out, const SchedPass& in) {
  out.at_ms = in.at_ms;
  out.took_ms = in.took_ms;
  out.cubes = in.cubes;
  out.working_sets = in.working_sets;
  out.promoted = in.promoted;
  out.demoted = in.demoted;
  out.archived = in.archived;
  out.prefills_queued = in.prefills_queued;
  out.distillations = in.distillations;
}

void fill(Arena& a, memos_sched_status& out, const SchedStatus& in) {
  out.enabled = in.enabled;
  out.interval_s = in.interval_s;
  out.passes = in.passes;
  fill(a, out.last_pass, in.last_pass);
  out.background_pending = in.background_pending;
  out.foreground_pending = in.foreground_pending;
  array(a, in.cubes, out.cubes, out.n_cubes,
        [](Arena& arena, memos_cube_schedule& c, const CubeSchedule& v) {
          c.cube = arena.str(v.cube);
          c.generation = v.generation;
          numbers(arena, v.items, c.items, c.n_items);
          c.estimated_tokens = v.estimated_tokens;
          c.block_tokens = v.block_tokens;
          c.state = v.state;
          c.prefill_pending = v.prefill_pending;
          c.chats = v.chats;
          c.restores = v.restores;
          c.prompt_tokens = v.prompt_tokens;
          c.reused_tokens = v.reused_tokens;
          c.updated_at_ms = v.updated_at_ms;
        });
  out.settings = a.str(in.settings);
}

void fill(Arena& a, memos_sched_decisions& out, const std::vector<SchedDecision>& in) {
  array(a, in, out.data, out.count,
        [](Arena& arena, memos_sched_decision& c, const SchedDecision& v) {
          c.at_ms = v.at_ms;
          c.cube = arena.str(v.cube);
          c.item = v.item;
          c.action = arena.str(v.action);
          c.reason = arena.str(v.reason);
        });
}

void fill(Arena& a, memos_explanation& out, const Explanation& in) {
  fill(a, out.item, in.item);
  out.strength = in.strength;
  out.recalls = in.recalls;
  out.last_recall_ms = in.last_recall_ms;
  out.retention = in.retention;
  out.score = in.score;
  out.time_unit = a.str(in.time_unit);
  out.in_working_set = in.in_working_set;
  out.position = in.position;
  out.working_set_state = in.working_set_state;
  numbers(a, in.activations, out.activations, out.n_activations);
  out.archive_at_ms = in.archive_at_ms;
  out.archived_by_scheduler = in.archived_by_scheduler;
}

}  // namespace memos::c_api
