"""What the calls return, as dataclasses, and how each is read out of its
C struct (memos/_c.py).

Each dataclass names its fields as memos.h does (less the counts: a C array
and its n_ count are one list). Enum values are their names ("plaintext",
"active", "hybrid"); metadata, capabilities and features are dicts; item ids
are ints (format_id() gives their text form). A dataclass is read from its
struct by a plan made once per class (read()), so a result costs one pass
over its fields.
"""

from __future__ import annotations

import ctypes
import functools
import typing
from dataclasses import dataclass, fields

from . import _c

TIERS = ("plaintext", "activation", "parametric")
STATES = ("active", "archived", "frozen", "deleted")
MODES = ("dense", "lexical", "hybrid")
COST_TIERS = ("low", "mid", "high")
MODULES = ("retrieve", "temporal", "expand", "compress", "answer")
PLUGIN_STATES = ("listed", "loaded", "failed")
CHANGE_KINDS = ("added", "removed", "changed")


@dataclass(frozen=True)
class ParamInfo:
    kind: str
    name: str
    digest: str
    bytes: int
    scale: float
    base_model: str
    architecture: str
    tensors: int
    rank: int
    alpha: float
    origin: str


@dataclass(frozen=True)
class Item:
    id: int
    version: int
    text: str
    tags: list[str]
    meta: dict[str, str]
    created_at_ms: int
    recorded_at_ms: int
    deleted: bool
    tier: str
    state: str
    importance: float
    expires_at_ms: int
    valid_from_ms: int
    valid_to_ms: int
    writer_uid: int
    session_id: str
    sources: list[int]
    cube_version: int
    hits: int
    last_access_ms: int
    param: ParamInfo | None


@dataclass(frozen=True)
class MetaChange:
    key: str
    has_before: bool
    has_after: bool
    before: str
    after: str


@dataclass(frozen=True)
class ItemDiff:
    from_: Item
    to: Item
    text_changed: bool
    tags_added: list[str]
    tags_removed: list[str]
    meta_changes: list[MetaChange]
    state_changed: bool
    validity_changed: bool


@dataclass(frozen=True)
class CubeGrant:
    tenant: str
    uid: int
    write: bool
    granted_at_ms: int


@dataclass(frozen=True)
class Cube:
    id: int
    name: str
    owner_uid: int
    created_at_ms: int
    embedder: str
    dimension: int
    live_items: int
    head_version: int
    default_retriever: str
    language: str
    indexes: str
    shared_by: str
    shared_write: bool
    shares: list[CubeGrant]


@dataclass(frozen=True)
class Snapshot:
    tag: str
    cube_version: int
    created_at_ms: int
    live_items: int
    created_by: int


@dataclass(frozen=True)
class SnapshotChange:
    item_id: int
    kind: str
    from_version: int
    to_version: int
    text: str


@dataclass(frozen=True)
class Rank:
    retriever: str
    rank: int
    score: float


@dataclass(frozen=True)
class Hit:
    item: Item
    score: float
    cube: str
    ranks: list[Rank]


@dataclass(frozen=True)
class ModuleRun:
    module: str
    tier: str
    ms: float
    detail: str


@dataclass(frozen=True)
class RouteScore:
    route: str
    quality: float
    cost: float
    score: float


@dataclass(frozen=True)
class RouterChoice:
    source: str
    reason: str
    route: dict[str, str]  # module: tier
    ms: float
    features: dict[str, float]
    vector: list[float]
    scores: list[RouteScore]


@dataclass(frozen=True)
class ContextPiece:
    cube: str
    item_id: int
    text: str
    tokens: int
    neighbour_of: int


@dataclass(frozen=True)
class RoutedSearch:
    hits: list[Hit]
    context: list[ContextPiece]
    context_tokens: int
    modules: list[ModuleRun]
    router: RouterChoice | None


@dataclass(frozen=True)
class PluginInfo:
    name: str
    kinds: list[str]
    state: str
    detail: str
    health: str
    isolated: bool
    library: str
    manifest: str
    capabilities: dict[str, str]
    settings: dict[str, str]


@dataclass(frozen=True)
class ShardStatus:
    shard: int
    owner: str  # "" none now: a failover is under way
    last_sequence: int
    note: str  # why a figure is missing


@dataclass(frozen=True)
class NodeStatus:
    node: str
    answered: bool  # False: on the roster but silent; note says why
    note: str
    owner: bool
    position: int
    behind: int
    appended: int
    applied: int


@dataclass(frozen=True)
class BucketStatus:
    """The object store bucket of the cluster's KV states and adapters."""
    name: str
    blobs: int
    bytes: int  # what it stores, on each replica
    note: str  # why the figures are missing


@dataclass(frozen=True)
class CompactionStatus:
    """Log compaction: the newest store snapshot, and how far each shard's log
    was compacted."""
    snapshot_node: str  # "" none published yet
    snapshot_time_ms: int  # when its copy began, ms since the epoch
    snapshot_bytes: int
    floor: list[int]  # per shard: no record at or below it (0: none removed)
    note: str  # why a figure is missing


@dataclass(frozen=True)
class LogReplica:
    """One of the log's replicas other than its leader, as the leader reports it."""
    server: str  # the nats-server's name
    current: bool  # holds what the leader holds
    offline: bool  # the leader cannot reach it
    active_ms: int  # since the leader last heard from it
    lag: int  # operations it is behind the leader


@dataclass(frozen=True)
class LogStatus:
    """The log's stream: the nats-server that leads its replicas, through which
    every write is appended, and how the others keep up."""
    stream: str
    leader: str  # "" while its replicas elect one
    replicas: list[LogReplica]  # the others
    note: str  # why the figures are missing
    previous_leader: str  # cluster_step_down(): the leader that stepped down


@dataclass(frozen=True)
class ClusterStatus:
    """The cluster as the node asked sees it; enabled False: one node."""
    enabled: bool
    name: str
    node: str
    replicas: int
    lease_ms: int
    shards: list[ShardStatus]
    nodes: list[NodeStatus]
    bucket: BucketStatus
    compaction: CompactionStatus
    # node_policies[i]: the digest of the tenant policies nodes[i] enforces
    # (64 hex digits; "" unknown). policies_differ: a node that answered
    # enforces other policies than the node asked.
    node_policies: list[str]
    policies_differ: bool
    log: LogStatus


@dataclass(frozen=True)
class Status:
    version: str
    pid: int
    uptime_ms: int
    tenant_uid: int
    cubes: int
    connections: int
    requests_served: int
    data_dir: str
    socket: str
    plugins: list[PluginInfo]
    admin: bool
    index_backlog: int
    index_oldest_ms: float
    freshness_p50_ms: float
    freshness_p99_ms: float
    scheduler_passes: int
    scheduler_last_pass_ms: int
    scheduler_working_sets: int
    scheduler_prefills_pending: int
    executor_device: str  # "CPU" or the GPU's name ("CUDA0"); "" no executor
    executor_device_description: str
    executor_device_note: str  # device "auto" without a GPU: why not
    executor_gpu_layers: int
    executor_layers: int
    executor_device_memory_bytes: int


@dataclass(frozen=True)
class PolicyInfo:
    tenant: str
    file: str
    text: str
    folder: str
    tenants: int
    admin: bool
    stored_under: int


@dataclass(frozen=True)
class UsageBound:
    name: str
    limit: int
    used: int


@dataclass(frozen=True)
class TenantUsage:
    tenant: str
    stored_under: int
    cubes: int
    items: int
    text_bytes: int
    activation_items: int
    activation_bytes: int
    bounds: list[UsageBound]
    param_bytes: int
    router_tokens: int


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    cube: str
    name: str
    state: str
    done: int
    total: int
    loss: float
    message: str
    created_at_ms: int
    started_at_ms: int
    finished_at_ms: int
    item: int
    version: int
    memories: int
    tokens: int

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


@dataclass(frozen=True)
class Activation:
    id: int
    cube: str
    model: str
    model_hash: str
    kv_type: str
    tokens: int
    bytes: int
    sources: list[int]
    created_at_ms: int
    last_used_ms: int
    uses: int
    prefill_ms: float


@dataclass(frozen=True)
class KvStats:
    model: str
    model_hash: str
    kv_type: str
    context_tokens: int
    chunk_tokens: int
    items: int
    bytes: int
    tenant_max_bytes: int
    resident_states: int
    resident_bytes: int
    resident_budget_bytes: int
    resident_hits: int
    resident_misses: int
    rejected_states: int
    prompts_held: int
    prompt_hits: int
    prompt_hit_tokens: int
    adapters_loaded: int
    adapter_bytes: int
    adapter_budget_bytes: int
    adapter_loads: int
    device: str  # where the executor runs: "CPU" or the GPU's name
    device_description: str
    gpu_layers: int
    layers: int
    device_free_bytes: int
    device_total_bytes: int
    resident_pinned_states: int  # resident states in page-locked memory (a GPU's DMA source)
    resident_pinned_bytes: int
    pinned_bytes: int
    pinned_budget_bytes: int
    device_budget_bytes: int  # the KV cache's cells for resident states (activation.gpu_max_mb)
    device_states: int
    device_state_bytes: int
    device_state_hits: int


@dataclass(frozen=True)
class ChatReply:
    text: str
    memories: list[int]
    prompt_tokens: int
    block_tokens: int
    reused_tokens: int
    cached_tokens: int
    generated_tokens: int
    restored: bool
    stored: bool
    rejected: str
    not_stored: str
    activation: int
    restore_ms: float
    prefill_ms: float
    first_token_ms: float
    total_ms: float
    finish: str
    resident: bool
    format: str
    saved_ms: float
    adapters: list[str]
    modules: list[ModuleRun]
    router: RouterChoice | None


@dataclass(frozen=True)
class ChatPiece:
    text: str
    prefill_done: int
    prefill_total: int


@dataclass(frozen=True)
class SchedPass:
    at_ms: int
    took_ms: float
    cubes: int
    working_sets: int
    promoted: int
    demoted: int
    archived: int
    prefills_queued: int
    distillations: int


@dataclass(frozen=True)
class CubeSchedule:
    cube: str
    generation: int
    items: list[int]
    estimated_tokens: int
    block_tokens: int
    state: int
    prefill_pending: bool
    chats: int
    restores: int
    prompt_tokens: int
    reused_tokens: int
    updated_at_ms: int


@dataclass(frozen=True)
class SchedStatus:
    enabled: bool
    interval_s: int
    passes: int
    last_pass: SchedPass
    background_pending: int
    foreground_pending: int
    cubes: list[CubeSchedule]
    settings: str


@dataclass(frozen=True)
class SchedDecision:
    at_ms: int
    cube: str
    item: int
    action: str
    reason: str


@dataclass(frozen=True)
class Explanation:
    item: Item
    strength: float
    recalls: float
    last_recall_ms: int
    retention: float
    score: float
    time_unit: str
    in_working_set: bool
    position: int
    working_set_state: int
    activations: list[int]
    archive_at_ms: int
    archived_by_scheduler: bool


# ---- reading structs -------------------------------------------------------------

# The dataclass each struct reads into.
DATACLASS = {
    _c.ParamInfo: ParamInfo, _c.Item: Item, _c.MetaChange: MetaChange, _c.ItemDiff: ItemDiff,
    _c.CubeGrant: CubeGrant, _c.Cube: Cube, _c.Snapshot: Snapshot,
    _c.SnapshotChange: SnapshotChange, _c.Rank: Rank, _c.Hit: Hit, _c.ModuleRun: ModuleRun,
    _c.RouteScore: RouteScore, _c.RouterChoice: RouterChoice, _c.ContextPiece: ContextPiece,
    _c.RoutedSearch: RoutedSearch, _c.PluginInfo: PluginInfo, _c.Status: Status,
    _c.ShardStatus: ShardStatus, _c.NodeStatus: NodeStatus, _c.ClusterStatus: ClusterStatus,
    _c.BucketStatus: BucketStatus, _c.CompactionStatus: CompactionStatus,
    _c.LogReplica: LogReplica, _c.LogStatus: LogStatus, _c.PolicyInfo: PolicyInfo, _c.UsageBound: UsageBound, _c.TenantUsage: TenantUsage,
    _c.Job: Job, _c.Activation: Activation, _c.KvStats: KvStats, _c.ChatReply: ChatReply,
    _c.ChatPiece: ChatPiece, _c.SchedPass: SchedPass, _c.CubeSchedule: CubeSchedule,
    _c.SchedStatus: SchedStatus, _c.SchedDecision: SchedDecision,
    _c.Explanation: Explanation,
}

# Integer fields that hold an enum, by (struct, field): their names.
ENUMS = {
    (_c.Item, "tier"): TIERS, (_c.Item, "state"): STATES,
    (_c.Cube, "default_retriever"): MODES, (_c.Rank, "retriever"): MODES,
    (_c.ModuleRun, "module"): MODULES, (_c.ModuleRun, "tier"): COST_TIERS,
    (_c.PluginInfo, "state"): PLUGIN_STATES, (_c.SnapshotChange, "kind"): CHANGE_KINDS,
}


def text(s: _c.Str) -> str:
    """A memos_str as str (memosd stores UTF-8 only; anything else is
    replaced, never raised)."""
    return ctypes.string_at(s.ptr, s.len).decode("utf-8", "replace") if s.len else ""


def _enum_name(names: tuple[str, ...]):
    def read(value: int) -> str:
        return names[value] if 0 <= value < len(names) else f"unknown({value})"
    return read


def _element_reader(ctype):
    """How one element of a C array reads."""
    if ctype is _c.Str:
        return text
    if ctype in DATACLASS:
        return reader(ctype)
    return lambda v: v  # numbers


def _pairs_reader(ctype):
    """A C array of key/value structs read as a dict."""
    if ctype is _c.Meta:
        return lambda e: (text(e.key), text(e.value))
    if ctype is _c.Feature:
        return lambda e: (text(e.name), e.value)
    raise TypeError(f"no pair reading for {ctype.__name__}")


def _field_reader(struct, name: str, ctype, target_type, counts: set[str]):
    """How field `name` of `struct` reads into a dataclass field of
    `target_type`: a function of the struct's field value."""
    if ctype is _c.Str:
        return text
    if (struct, name) in ENUMS:
        return _enum_name(ENUMS[(struct, name)])
    if name == "route" and struct is _c.RouterChoice:
        return lambda arr: {MODULES[m]: COST_TIERS[arr[m]] if 0 <= arr[m] < 3 else "unknown"
                            for m in range(_c.ROUTE_MODULES)}
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
        return reader(ctype)
    if hasattr(ctype, "_type_") and issubclass(ctype, ctypes._Pointer):
        element = ctype._type_
        if "n_" + name in counts:
            n_name = "n_" + name
            if typing.get_origin(target_type) is dict:
                pair = _pairs_reader(element)
                return ("counted", n_name, lambda p, n: dict(pair(p[i]) for i in range(n)))
            each = _element_reader(element)
            return ("counted", n_name, lambda p, n: [each(p[i]) for i in range(n)])
        each = reader(element)
        return lambda p: each(p.contents) if p else None
    if target_type is bool:
        return bool
    return None  # a number as it is


@functools.cache
def reader(struct):
    """A function reading `struct` (a ctypes Structure) into its dataclass,
    planned once per struct."""
    cls = DATACLASS[struct]
    ctypes_of = dict(struct._fields_)
    counts = {n for n in ctypes_of if n.startswith("n_")}
    hints = typing.get_type_hints(cls)
    plan = []
    for f in fields(cls):
        plan.append((f.name, _field_reader(struct, f.name, ctypes_of[f.name], hints[f.name],
                                           counts)))

    def read(value):
        out = {}
        for name, how in plan:
            raw = getattr(value, name)
            if how is None:
                out[name] = raw
            elif isinstance(how, tuple):
                out[name] = how[2](raw, getattr(value, how[1])) if raw else []
            else:
                out[name] = how(raw)
        return cls(**out)

    return read


def read_list(value) -> list:
    """A memos_* list struct (data, count) as a list of dataclasses."""
    each = reader(value._fields_[0][1]._type_)
    return [each(value.data[i]) for i in range(value.count)]
