"""The C API (memos.h, libmemos.so) as ctypes sees it: the library, every
struct of the header field by field, in the header's order, and each
function's argument and result types.

This module mirrors memos.h and nothing more; the rest of the package turns
what it returns into dataclasses. tests/test_layout.py compiles the header
and checks every struct's size against these, so the two cannot drift.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path
from ctypes import (POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_int64,
                    c_size_t, c_uint32, c_uint64, c_void_p)

# ---- values in results ---------------------------------------------------------


class Str(Structure):
    _fields_ = [("ptr", POINTER(c_char)), ("len", c_size_t)]


class Meta(Structure):
    _fields_ = [("key", Str), ("value", Str)]


class ParamInfo(Structure):
    _fields_ = [("kind", Str), ("name", Str), ("digest", Str), ("bytes", c_uint64),
                ("scale", c_float), ("base_model", Str), ("architecture", Str),
                ("tensors", c_uint32), ("rank", c_uint32), ("alpha", c_float),
                ("origin", Str)]


class Item(Structure):
    _fields_ = [("id", c_uint64), ("version", c_uint32), ("text", Str),
                ("tags", POINTER(Str)), ("n_tags", c_size_t),
                ("meta", POINTER(Meta)), ("n_meta", c_size_t),
                ("created_at_ms", c_int64), ("recorded_at_ms", c_int64),
                ("deleted", c_int), ("tier", c_int), ("state", c_int),
                ("importance", c_float), ("expires_at_ms", c_int64),
                ("valid_from_ms", c_int64), ("valid_to_ms", c_int64),
                ("writer_uid", c_uint32), ("session_id", Str),
                ("sources", POINTER(c_uint64)), ("n_sources", c_size_t),
                ("cube_version", c_uint64), ("hits", c_uint64),
                ("last_access_ms", c_int64), ("param", POINTER(ParamInfo))]


def _list_of(element: type) -> type:
    class List(Structure):
        _fields_ = [("data", POINTER(element)), ("count", c_size_t)]
    List.__name__ = element.__name__ + "List"
    return List


Items = _list_of(Item)


class MetaChange(Structure):
    _fields_ = [("key", Str), ("has_before", c_int), ("has_after", c_int),
                ("before", Str), ("after", Str)]


class ItemDiff(Structure):
    _fields_ = [("from_", Item), ("to", Item), ("text_changed", c_int),
                ("tags_added", POINTER(Str)), ("n_tags_added", c_size_t),
                ("tags_removed", POINTER(Str)), ("n_tags_removed", c_size_t),
                ("meta_changes", POINTER(MetaChange)), ("n_meta_changes", c_size_t),
                ("state_changed", c_int), ("validity_changed", c_int)]


class CubeGrant(Structure):
    _fields_ = [("tenant", Str), ("uid", c_uint32), ("write", c_int),
                ("granted_at_ms", c_int64)]


class Cube(Structure):
    _fields_ = [("id", c_uint64), ("name", Str), ("owner_uid", c_uint32),
                ("created_at_ms", c_int64), ("embedder", Str), ("dimension", c_uint32),
                ("live_items", c_uint64), ("head_version", c_uint64),
                ("default_retriever", c_int), ("language", Str), ("indexes", Str),
                ("shared_by", Str), ("shared_write", c_int),
                ("shares", POINTER(CubeGrant)), ("n_shares", c_size_t)]


Cubes = _list_of(Cube)


class Snapshot(Structure):
    _fields_ = [("tag", Str), ("cube_version", c_uint64), ("created_at_ms", c_int64),
                ("live_items", c_uint64), ("created_by", c_uint32)]


Snapshots = _list_of(Snapshot)


class SnapshotChange(Structure):
    _fields_ = [("item_id", c_uint64), ("kind", c_int), ("from_version", c_uint32),
                ("to_version", c_uint32), ("text", Str)]


SnapshotChanges = _list_of(SnapshotChange)


class Rank(Structure):
    _fields_ = [("retriever", c_int), ("rank", c_uint32), ("score", c_float)]


class Hit(Structure):
    _fields_ = [("item", Item), ("score", c_float), ("cube", Str),
                ("ranks", POINTER(Rank)), ("n_ranks", c_size_t)]


Hits = _list_of(Hit)

ROUTE_MODULES = 4


class ModuleRun(Structure):
    _fields_ = [("module", c_int), ("tier", c_int), ("ms", c_double), ("detail", Str)]


class RouteScore(Structure):
    _fields_ = [("route", Str), ("quality", c_float), ("cost", c_float), ("score", c_float)]


class Feature(Structure):
    _fields_ = [("name", Str), ("value", c_float)]


class RouterChoice(Structure):
    _fields_ = [("source", Str), ("reason", Str), ("route", c_int * ROUTE_MODULES),
                ("ms", c_double), ("features", POINTER(Feature)), ("n_features", c_size_t),
                ("vector", POINTER(c_float)), ("n_vector", c_size_t),
                ("scores", POINTER(RouteScore)), ("n_scores", c_size_t)]


class ContextPiece(Structure):
    _fields_ = [("cube", Str), ("item_id", c_uint64), ("text", Str), ("tokens", c_uint32),
                ("neighbour_of", c_uint64)]


class RoutedSearch(Structure):
    _fields_ = [("hits", POINTER(Hit)), ("n_hits", c_size_t),
                ("context", POINTER(ContextPiece)), ("n_context", c_size_t),
                ("context_tokens", c_uint32),
                ("modules", POINTER(ModuleRun)), ("n_modules", c_size_t),
                ("router", POINTER(RouterChoice))]


class PluginInfo(Structure):
    _fields_ = [("name", Str), ("kinds", POINTER(Str)), ("n_kinds", c_size_t),
                ("state", c_int), ("detail", Str), ("health", Str), ("isolated", c_int),
                ("library", Str), ("manifest", Str),
                ("capabilities", POINTER(Meta)), ("n_capabilities", c_size_t),
                ("settings", POINTER(Meta)), ("n_settings", c_size_t)]


Plugins = _list_of(PluginInfo)


class ShardStatus(Structure):
    _fields_ = [("shard", c_uint32), ("owner", Str), ("last_sequence", c_uint64),
                ("note", Str)]


class NodeStatus(Structure):
    _fields_ = [("node", Str), ("answered", c_int), ("note", Str), ("owner", c_int),
                ("position", c_uint64), ("behind", c_uint64), ("appended", c_uint64),
                ("applied", c_uint64)]


class BucketStatus(Structure):
    _fields_ = [("name", Str), ("blobs", c_uint64), ("bytes", c_uint64), ("note", Str)]


class CompactionStatus(Structure):
    _fields_ = [("snapshot_node", Str), ("snapshot_time_ms", c_uint64),
                ("snapshot_bytes", c_uint64), ("floor", POINTER(c_uint64)), ("n_floor", c_size_t),
                ("note", Str)]


class LogReplica(Structure):
    _fields_ = [("server", Str), ("current", c_int), ("offline", c_int), ("active_ms", c_uint64),
                ("lag", c_uint64)]


class LogStatus(Structure):
    _fields_ = [("stream", Str), ("leader", Str), ("replicas", POINTER(LogReplica)),
                ("n_replicas", c_size_t), ("note", Str), ("previous_leader", Str)]


class ClusterStatus(Structure):
    _fields_ = [("enabled", c_int), ("name", Str), ("node", Str), ("replicas", c_uint32),
                ("lease_ms", c_uint32), ("shards", POINTER(ShardStatus)),
                ("n_shards", c_size_t), ("nodes", POINTER(NodeStatus)), ("n_nodes", c_size_t),
                ("bucket", BucketStatus), ("compaction", CompactionStatus),
                ("node_policies", POINTER(Str)), ("n_node_policies", c_size_t),
                ("policies_differ", c_int), ("log", LogStatus)]


class Status(Structure):
    _fields_ = [("version", Str), ("pid", c_uint32), ("uptime_ms", c_int64),
                ("tenant_uid", c_uint32), ("cubes", c_uint32), ("connections", c_uint32),
                ("requests_served", c_uint64), ("data_dir", Str), ("socket", Str),
                ("plugins", POINTER(PluginInfo)), ("n_plugins", c_size_t), ("admin", c_int),
                ("index_backlog", c_uint64), ("index_oldest_ms", c_double),
                ("freshness_p50_ms", c_double), ("freshness_p99_ms", c_double),
                ("scheduler_passes", c_uint64), ("scheduler_last_pass_ms", c_int64),
                ("scheduler_working_sets", c_uint32),
                ("scheduler_prefills_pending", c_uint32),
                ("executor_device", Str), ("executor_device_description", Str),
                ("executor_device_note", Str), ("executor_gpu_layers", c_uint32),
                ("executor_layers", c_uint32), ("executor_device_memory_bytes", c_uint64)]


class PolicyInfo(Structure):
    _fields_ = [("tenant", Str), ("file", Str), ("text", Str), ("folder", Str),
                ("tenants", c_uint32), ("admin", c_int), ("stored_under", c_uint32)]


class UsageBound(Structure):
    _fields_ = [("name", Str), ("limit", c_uint64), ("used", c_uint64)]


class TenantUsage(Structure):
    _fields_ = [("tenant", Str), ("stored_under", c_uint32), ("cubes", c_uint64),
                ("items", c_uint64), ("text_bytes", c_uint64), ("activation_items", c_uint64),
                ("activation_bytes", c_uint64), ("bounds", POINTER(UsageBound)),
                ("n_bounds", c_size_t), ("param_bytes", c_uint64), ("router_tokens", c_uint64)]


class Job(Structure):
    _fields_ = [("id", c_uint64), ("kind", Str), ("cube", Str), ("name", Str), ("state", Str),
                ("done", c_uint32), ("total", c_uint32), ("loss", c_float), ("message", Str),
                ("created_at_ms", c_int64), ("started_at_ms", c_int64),
                ("finished_at_ms", c_int64), ("item", c_uint64), ("version", c_uint32),
                ("memories", c_uint32), ("tokens", c_uint32)]


Jobs = _list_of(Job)


class Activation(Structure):
    _fields_ = [("id", c_uint64), ("cube", Str), ("model", Str), ("model_hash", Str),
                ("kv_type", Str), ("tokens", c_uint32), ("bytes", c_uint64),
                ("sources", POINTER(c_uint64)), ("n_sources", c_size_t),
                ("created_at_ms", c_int64), ("last_used_ms", c_int64), ("uses", c_uint64),
                ("prefill_ms", c_double)]


Activations = _list_of(Activation)


class KvStats(Structure):
    _fields_ = [("model", Str), ("model_hash", Str), ("kv_type", Str),
                ("context_tokens", c_uint32), ("chunk_tokens", c_uint32),
                ("items", c_uint64), ("bytes", c_uint64), ("tenant_max_bytes", c_uint64),
                ("resident_states", c_uint32), ("resident_bytes", c_uint64),
                ("resident_budget_bytes", c_uint64), ("resident_hits", c_uint64),
                ("resident_misses", c_uint64), ("rejected_states", c_uint64),
                ("prompts_held", c_uint32), ("prompt_hits", c_uint64),
                ("prompt_hit_tokens", c_uint64), ("adapters_loaded", c_uint32),
                ("adapter_bytes", c_uint64), ("adapter_budget_bytes", c_uint64),
                ("adapter_loads", c_uint64),
                ("device", Str), ("device_description", Str), ("gpu_layers", c_uint32),
                ("layers", c_uint32), ("device_free_bytes", c_uint64),
                ("device_total_bytes", c_uint64), ("resident_pinned_states", c_uint32),
                ("resident_pinned_bytes", c_uint64), ("pinned_bytes", c_uint64),
                ("pinned_budget_bytes", c_uint64), ("device_budget_bytes", c_uint64),
                ("device_states", c_uint32), ("device_state_bytes", c_uint64),
                ("device_state_hits", c_uint64)]


class ChatReply(Structure):
    _fields_ = [("text", Str), ("memories", POINTER(c_uint64)), ("n_memories", c_size_t),
                ("prompt_tokens", c_uint32), ("block_tokens", c_uint32),
                ("reused_tokens", c_uint32), ("cached_tokens", c_uint32),
                ("generated_tokens", c_uint32), ("restored", c_int), ("stored", c_int),
                ("rejected", Str), ("not_stored", Str), ("activation", c_uint64),
                ("restore_ms", c_double), ("prefill_ms", c_double),
                ("first_token_ms", c_double), ("total_ms", c_double), ("finish", Str),
                ("resident", c_int), ("format", Str), ("saved_ms", c_double),
                ("adapters", POINTER(Str)), ("n_adapters", c_size_t),
                ("modules", POINTER(ModuleRun)), ("n_modules", c_size_t),
                ("router", POINTER(RouterChoice))]


class ChatPiece(Structure):
    _fields_ = [("text", Str), ("prefill_done", c_uint32), ("prefill_total", c_uint32)]


class SchedPass(Structure):
    _fields_ = [("at_ms", c_int64), ("took_ms", c_double), ("cubes", c_uint32),
                ("working_sets", c_uint32), ("promoted", c_uint32), ("demoted", c_uint32),
                ("archived", c_uint32), ("prefills_queued", c_uint32),
                ("distillations", c_uint32)]


class CubeSchedule(Structure):
    _fields_ = [("cube", Str), ("generation", c_uint64), ("items", POINTER(c_uint64)),
                ("n_items", c_size_t), ("estimated_tokens", c_uint32),
                ("block_tokens", c_uint32), ("state", c_uint64), ("prefill_pending", c_int),
                ("chats", c_uint64), ("restores", c_uint64), ("prompt_tokens", c_uint64),
                ("reused_tokens", c_uint64), ("updated_at_ms", c_int64)]


class SchedStatus(Structure):
    _fields_ = [("enabled", c_int), ("interval_s", c_uint32), ("passes", c_uint64),
                ("last_pass", SchedPass), ("background_pending", c_uint32),
                ("foreground_pending", c_uint32), ("cubes", POINTER(CubeSchedule)),
                ("n_cubes", c_size_t), ("settings", Str)]


class SchedDecision(Structure):
    _fields_ = [("at_ms", c_int64), ("cube", Str), ("item", c_uint64), ("action", Str),
                ("reason", Str)]


SchedDecisions = _list_of(SchedDecision)


class Explanation(Structure):
    _fields_ = [("item", Item), ("strength", c_double), ("recalls", c_double),
                ("last_recall_ms", c_int64), ("retention", c_double), ("score", c_double),
                ("time_unit", Str), ("in_working_set", c_int), ("position", c_uint32),
                ("working_set_state", c_uint64), ("activations", POINTER(c_uint64)),
                ("n_activations", c_size_t), ("archive_at_ms", c_int64),
                ("archived_by_scheduler", c_int)]


# ---- arguments -------------------------------------------------------------------


class Error(Structure):
    _fields_ = [("code", c_int), ("retryable", c_int), ("retry_after_ms", c_uint32),
                ("message", c_void_p)]


class Pair(Structure):
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class ClientOptions(Structure):
    _fields_ = [("max_message_bytes", c_size_t), ("wait_searchable", c_int),
                ("max_staleness_ms", c_uint32)]


class NewItem(Structure):
    _fields_ = [("text", c_char_p), ("tags", POINTER(c_char_p)), ("n_tags", c_size_t),
                ("meta", POINTER(Pair)), ("n_meta", c_size_t), ("importance", c_float),
                ("ttl_ms", c_int64), ("valid_from_ms", c_int64), ("valid_to_ms", c_int64),
                ("session_id", c_char_p), ("sources", POINTER(c_uint64)),
                ("n_sources", c_size_t), ("supersedes", c_uint64),
                ("idempotency_key", c_char_p), ("wait_searchable", c_int),
                ("allow_duplicate", c_int)]


class ItemChange(Structure):
    _fields_ = [("text", c_char_p), ("set_tags", c_int), ("tags", POINTER(c_char_p)),
                ("n_tags", c_size_t), ("set_meta", c_int), ("meta", POINTER(Pair)),
                ("n_meta", c_size_t), ("session_id", c_char_p),
                ("idempotency_key", c_char_p), ("wait_searchable", c_int)]


class Routing(Structure):
    _fields_ = [("budget", c_char_p), ("route", c_char_p), ("lambda_", c_float),
                ("reference_ms", c_int64), ("context_tokens", c_uint32)]


class SearchOptions(Structure):
    _fields_ = [("k", c_uint32), ("tags", POINTER(c_char_p)), ("n_tags", c_size_t),
                ("as_of_ms", c_int64), ("include_archived", c_int), ("mode", c_int),
                ("any_tags", POINTER(c_char_p)), ("n_any_tags", c_size_t),
                ("meta", POINTER(Pair)), ("n_meta", c_size_t),
                ("tiers", POINTER(c_int)), ("n_tiers", c_size_t),
                ("states", POINTER(c_int)), ("n_states", c_size_t),
                ("recorded_since_ms", c_int64), ("recorded_until_ms", c_int64),
                ("valid_since_ms", c_int64), ("valid_until_ms", c_int64),
                ("explain", c_int), ("more_cubes", POINTER(c_char_p)),
                ("n_more_cubes", c_size_t), ("recency_weight", c_float),
                ("importance_weight", c_float), ("retention_weight", c_float),
                ("mmr_lambda", c_float), ("fresh", c_int), ("has_min_score", c_int),
                ("min_score", c_float), ("routing", Routing)]


class AdapterUse(Structure):
    _fields_ = [("name", c_char_p), ("scale", c_float)]


class ChatOptions(Structure):
    _fields_ = [("k", c_uint32), ("ids", POINTER(c_uint64)), ("n_ids", c_size_t),
                ("mode", c_int), ("activate", c_int), ("no_reuse", c_int),
                ("max_tokens", c_uint32), ("temperature", c_float), ("top_k", c_uint32),
                ("top_p", c_float), ("seed", c_uint32), ("adapters", POINTER(AdapterUse)),
                ("n_adapters", c_size_t), ("no_adapters", c_int), ("routing", Routing)]


class DistillArgs(Structure):
    _fields_ = [("cube", c_char_p), ("name", c_char_p), ("tag", c_char_p),
                ("ids", POINTER(c_uint64)), ("n_ids", c_size_t), ("rank", c_uint32),
                ("steps", c_uint32), ("scale", c_float), ("description", c_char_p)]


# Every struct the layout test checks, by its name in memos.h.
STRUCTS = {
    "memos_str": Str, "memos_meta": Meta, "memos_param_info": ParamInfo,
    "memos_item": Item, "memos_items": Items, "memos_meta_change": MetaChange,
    "memos_item_diff": ItemDiff, "memos_cube_grant": CubeGrant, "memos_cube": Cube,
    "memos_cubes": Cubes, "memos_snapshot": Snapshot, "memos_snapshots": Snapshots,
    "memos_snapshot_change": SnapshotChange, "memos_snapshot_changes": SnapshotChanges,
    "memos_rank": Rank, "memos_hit": Hit, "memos_hits": Hits, "memos_module_run": ModuleRun,
    "memos_route_score": RouteScore, "memos_feature": Feature,
    "memos_router_choice": RouterChoice, "memos_context_piece": ContextPiece,
    "memos_routed_search": RoutedSearch, "memos_plugin_info": PluginInfo,
    "memos_plugins": Plugins, "memos_status": Status, "memos_policy_info": PolicyInfo,
    "memos_shard_status": ShardStatus, "memos_node_status": NodeStatus,
    "memos_bucket_status": BucketStatus, "memos_compaction_status": CompactionStatus,
    "memos_cluster_status": ClusterStatus, "memos_log_replica": LogReplica,
    "memos_log_status": LogStatus,
    "memos_usage_bound": UsageBound, "memos_tenant_usage": TenantUsage, "memos_job": Job,
    "memos_jobs": Jobs, "memos_activation": Activation, "memos_activations": Activations,
    "memos_kv_stats": KvStats, "memos_chat_reply": ChatReply, "memos_chat_piece": ChatPiece,
    "memos_sched_pass": SchedPass, "memos_cube_schedule": CubeSchedule,
    "memos_sched_status": SchedStatus, "memos_sched_decision": SchedDecision,
    "memos_sched_decisions": SchedDecisions, "memos_explanation": Explanation,
    "memos_error": Error, "memos_pair": Pair, "memos_client_options": ClientOptions,
    "memos_new_item": NewItem, "memos_item_change": ItemChange, "memos_routing": Routing,
    "memos_search_options": SearchOptions, "memos_adapter_use": AdapterUse,
    "memos_chat_options": ChatOptions, "memos_distill_args": DistillArgs,
}

# ---- the library -------------------------------------------------------------------

WRITE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(c_char), c_size_t)
READ_FN = ctypes.CFUNCTYPE(c_size_t, c_void_p, POINTER(c_char), c_size_t)
PIECE_FN = ctypes.CFUNCTYPE(None, c_void_p, POINTER(ChatPiece))


def _find_library() -> str:
    """$MEMOS_LIBRARY; else the libmemos.so.1 installed beside this package
    (PREFIX/lib/python3/dist-packages/memos: PREFIX/lib, or its multiarch
    folder, as `cmake --install --prefix` lays them out); else where the
    dynamic linker finds it."""
    explicit = os.environ.get("MEMOS_LIBRARY")
    if explicit:
        return explicit
    here = Path(__file__).resolve().parent
    if here.parent.name in ("dist-packages", "site-packages") and len(here.parents) > 3:
        prefix_lib = here.parents[2]
        for candidate in [prefix_lib / "libmemos.so.1", *sorted(prefix_lib.glob("*/libmemos.so.1"))]:
            if candidate.exists():
                return str(candidate)
    return ctypes.util.find_library("memos") or "libmemos.so.1"


P = POINTER
_PENDING = P(c_void_p)
_ERR = P(Error)
_C = c_void_p  # memos_client *
_S = c_char_p

# name: (arguments before the result, the result's struct or None).
# Each call NAME also has NAME_send(client, ARGS..., memos_pending **, err).
CALLS = {
    "memos_status_get": ((), Status),
    "memos_metrics": ((), Str),
    "memos_cluster_status_get": ((), ClusterStatus),
    "memos_cluster_step_down": ((), ClusterStatus),
    "memos_cube_create": ((_S, c_int, _S), Cube),
    "memos_cube_list": ((), Cubes),
    "memos_cube_show": ((_S,), Cube),
    "memos_cube_remove": ((_S, c_int), None),
    "memos_cube_share": ((_S, _S, c_int), Cube),
    "memos_cube_unshare": ((_S, _S), Cube),
    "memos_add": ((_S, P(NewItem)), Item),
    "memos_get": ((_S, c_uint64, c_uint32), Item),
    "memos_update": ((_S, c_uint64, P(ItemChange)), Item),
    "memos_remove": ((_S, c_uint64, _S), Item),
    "memos_history": ((_S, c_uint64), Items),
    "memos_set_state": ((_S, c_uint64, c_int), Item),
    "memos_rollback": ((_S, c_uint64, c_uint32), Item),
    "memos_diff": ((_S, c_uint64, c_uint32, c_uint32), ItemDiff),
    "memos_snapshot_create": ((_S, _S), Snapshot),
    "memos_snapshot_list": ((_S,), Snapshots),
    "memos_snapshot_diff": ((_S, _S, _S), SnapshotChanges),
    "memos_search": ((_S, _S, P(SearchOptions)), Hits),
    "memos_search_routed": ((_S, _S, P(SearchOptions)), RoutedSearch),
    "memos_param_cvec": ((_S, _S, _S, _S, c_float, _S), Item),
    "memos_param_list": ((_S,), Items),
    "memos_param_show": ((_S, _S, c_uint32), Item),
    "memos_param_remove": ((_S, _S), Item),
    "memos_param_distill": ((P(DistillArgs),), Job),
    "memos_job_list": ((), Jobs),
    "memos_job_show": ((c_uint64,), Job),
    "memos_job_cancel": ((c_uint64,), Job),
    "memos_plugin_list": ((), Plugins),
    "memos_plugin_info_get": ((_S,), PluginInfo),
    "memos_plugin_reload": ((_S,), PluginInfo),
    "memos_policy_show": ((_S,), PolicyInfo),
    "memos_policy_reload": ((), PolicyInfo),
    "memos_tenant_usage_get": ((_S,), TenantUsage),
    "memos_chat": ((_S, _S, P(ChatOptions)), ChatReply),
    "memos_chat_stream": ((_S, _S, P(ChatOptions), PIECE_FN, c_void_p), ChatReply),
    "memos_kv_prefill": ((_S, P(c_uint64), c_size_t, c_uint32), Activation),
    "memos_kv_list": ((_S,), Activations),
    "memos_kv_remove": ((_S, c_uint64), Activation),
    "memos_kv_stats_get": ((), KvStats),
    "memos_sched_status_get": ((_S,), SchedStatus),
    "memos_sched_log": ((_S, c_uint32), SchedDecisions),
    "memos_sched_run": ((), SchedPass),
    "memos_explain": ((_S, c_uint64), Explanation),
}


def _declare(lib: ctypes.CDLL) -> None:
    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    for name, (args, result) in CALLS.items():
        out = () if result is None else (P(P(result)),)
        fn(name, c_int, _C, *args, *out, _ERR)
        fn(name + "_send", c_int, _C, *args, _PENDING, _ERR)
    fn("memos_version", c_char_p)
    fn("memos_strerror", c_char_p, c_int)
    fn("memos_free", None, c_void_p)
    fn("memos_default_socket", c_void_p)
    fn("memos_connect", c_int, _S, P(ClientOptions), P(_C), _ERR)
    fn("memos_close", None, _C)
    fn("memos_in_flight", c_size_t, _C)
    fn("memos_wait", c_int, c_void_p, c_void_p, _ERR)
    fn("memos_ready", c_int, c_void_p)
    fn("memos_format_id", None, c_uint64, P(c_char))
    fn("memos_parse_id", c_int, _S, P(c_uint64))
    fn("memos_export_cube", c_int, _C, _S, WRITE_FN, c_void_p, P(c_uint64), _ERR)
    fn("memos_import_cube", c_int, _C, READ_FN, c_void_p, _S, P(P(Cube)), _ERR)
    fn("memos_param_add", c_int, _C, _S, _S, c_char_p, c_size_t, c_float, _S, P(P(Item)), _ERR)
    fn("memos_param_export", c_int, _C, _S, _S, c_uint32, WRITE_FN, c_void_p, P(c_uint32),
       _ERR)
    for init, struct in (("memos_client_options_init", ClientOptions),
                         ("memos_new_item_init", NewItem),
                         ("memos_item_change_init", ItemChange),
                         ("memos_search_options_init", SearchOptions),
                         ("memos_chat_options_init", ChatOptions),
                         ("memos_distill_args_init", DistillArgs)):
        fn(init, None, P(struct))


@functools.cache
def lib() -> ctypes.CDLL:
    """libmemos, loaded and declared on first use (importing memos loads nothing)."""
    loaded = ctypes.CDLL(_find_library())
    _declare(loaded)
    return loaded
