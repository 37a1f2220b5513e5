"""Client: one connection to memosd, every call of memos.h.

Every request goes one way: _send() calls the C API's NAME_send, which
writes the request and returns a Pending; the blocking methods wait on it at
once (exactly what the C API's blocking forms do), AsyncClient (memos/aio.py)
awaits it, and add_batch() sends many before waiting on any. Arguments are
encoded here (str to UTF-8, lists to C arrays) and kept alive until the call
has copied them; results come back as the dataclasses of memos/types.py.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from ctypes import POINTER, byref, c_char_p, c_uint64, c_void_p

from . import _c
from .errors import BadRequest, MemosError, from_code
from .types import (MODES, STATES, TIERS, Activation, ChatPiece, ChatReply, ClusterStatus, Cube,
                    Explanation,
                    Hit, Item, ItemDiff, Job, KvStats, PluginInfo, PolicyInfo, RoutedSearch,
                    SchedDecision, SchedPass, SchedStatus, Snapshot, SnapshotChange, Status,
                    TenantUsage, read_list, reader, text)


def _raise(code: int, err: _c.Error) -> typing.NoReturn:
    message = ""
    if err.message:
        message = ctypes.string_at(err.message).decode("utf-8", "replace")
        _c.lib().memos_free(err.message)
    raise from_code(code, message, bool(err.retryable), err.retry_after_ms)


def _b(value: str | None, what: str) -> bytes | None:
    """A str argument as the C API takes it: UTF-8, NUL-terminated (so it
    may not hold a NUL)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{what}: a str, not {type(value).__name__}")
    if "\0" in value:
        raise BadRequest(f"{what}: holds a NUL character")
    return value.encode("utf-8", "surrogatepass")


class _Args:
    """C arrays for one call's arguments, alive as long as it is."""

    def __init__(self) -> None:
        self.keep: list = []

    def strings(self, values: Iterable[str] | None, what: str):
        if values is None:
            return None, 0
        if isinstance(values, str):
            raise BadRequest(f"{what}: a list of str, not a str")
        encoded = [_b(v, what) for v in values]
        array = (c_char_p * len(encoded))(*encoded)
        self.keep.append(array)
        return array, len(encoded)

    def pairs(self, values: Mapping[str, str] | None, what: str):
        if not values:
            return None, 0
        array = (_c.Pair * len(values))(
            *(_c.Pair(_b(k, what), _b(v, what)) for k, v in values.items()))
        self.keep.append(array)
        return array, len(values)

    def ids(self, values: Sequence[int] | None):
        if not values:
            return None, 0
        array = (c_uint64 * len(values))(*values)
        self.keep.append(array)
        return array, len(values)

    def ints(self, values: Sequence[int]):
        array = (ctypes.c_int * len(values))(*values)
        self.keep.append(array)
        return array, len(values)


def _enum(names: tuple[str, ...], value: str | None, what: str, none: int = -1) -> int:
    if value is None:
        return none
    try:
        return names.index(value)
    except ValueError:
        raise BadRequest(f"{what}: one of {', '.join(names)}; got {value!r}") from None


def _convert(result, out):
    """The C result `out` (a pointer to its struct) as Python values."""
    if result is None:
        return None
    value = out.contents
    if result is _c.Str:
        return text(value)
    if [name for name, _ in result._fields_] == ["data", "count"]:
        return read_list(value)
    return reader(result)(value)


class Pending:
    """A request sent and not yet answered (memos_pending)."""

    def __init__(self, handle: c_void_p, result, keep: object) -> None:
        self._handle = handle
        self._result = result
        self._keep = keep  # arguments and callbacks the call still uses

    def ready(self) -> bool:
        """Whether wait() would not block."""
        return self._handle is not None and bool(_c.lib().memos_ready(self._handle))

    def wait(self):
        """The reply's value; raises its MemosError."""
        if self._handle is None:
            raise BadRequest("this reply was already waited for")
        handle, self._handle = self._handle, None
        lib = _c.lib()
        err = _c.Error()
        out = POINTER(self._result)() if self._result is not None else None
        rc = lib.memos_wait(handle, byref(out) if out is not None else None, byref(err))
        try:
            if rc != 0:
                _raise(rc, err)
            return _convert(self._result, out)
        finally:
            if out:
                lib.memos_free(out)
            self._keep = None

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            _c.lib().memos_free(self._handle)


def default_socket() -> str:
    """$MEMOS_SOCKET, else memosd's default socket."""
    lib = _c.lib()
    p = lib.memos_default_socket()
    try:
        return ctypes.string_at(p).decode()
    finally:
        lib.memos_free(p)


def format_id(item_id: int) -> str:
    """An item id as memctl prints it (13 characters of base32)."""
    buf = ctypes.create_string_buffer(32)
    _c.lib().memos_format_id(item_id, buf)
    return buf.value.decode()


def parse_id(text_id: str) -> int:
    """An item id from its text form; BadRequest if it is none."""
    out = c_uint64()
    if _c.lib().memos_parse_id(_b(text_id, "id"), byref(out)) != 0:
        raise BadRequest(f"not an item id: {text_id!r}")
    return out.value


class Client:
    """One connection to memosd (memos.h). Use it as a context manager, or
    close() it. It may be used from several threads at once."""

    def __init__(self, handle: c_void_p) -> None:
        self._handle = handle

    @classmethod
    def connect(cls, socket: str | None = None, *, wait_searchable: bool = False,
                max_message_bytes: int = 0, max_staleness_ms: int = 0) -> "Client":
        """Connects to `socket` ($MEMOS_SOCKET, else memosd's default) as the
        calling user. wait_searchable: every item write answers once it is
        searchable. max_staleness_ms (cluster mode): a node known to hold
        every acknowledged write at most this long ago answers reads at once
        (0: every read sees every write acknowledged before it). Raises
        ConnectFailed."""
        lib = _c.lib()
        options = _c.ClientOptions()
        lib.memos_client_options_init(byref(options))
        options.wait_searchable = int(wait_searchable)
        if not 0 <= max_staleness_ms <= 0xFFFFFFFF:
            raise BadRequest("max_staleness_ms: 0 to 4294967295")
        options.max_staleness_ms = max_staleness_ms
        if max_message_bytes:
            options.max_message_bytes = max_message_bytes
        handle = c_void_p()
        err = _c.Error()
        rc = lib.memos_connect(_b(socket, "socket"), byref(options), byref(handle), byref(err))
        if rc != 0:
            _raise(rc, err)
        return cls(handle)

    def close(self) -> None:
        """Closes the connection; replies still pending raise ConnectionLost."""
        if self._handle:
            _c.lib().memos_close(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None):
            self.close()

    @property
    def in_flight(self) -> int:
        """Requests sent whose replies have not come."""
        return _c.lib().memos_in_flight(self._handle) if self._handle else 0

    # ---- the one path --------------------------------------------------------

    def _send(self, name: str, args: tuple, keep: object = None) -> Pending:
        if not self._handle:
            raise BadRequest("the client is closed")
        lib = _c.lib()
        pending = c_void_p()
        err = _c.Error()
        rc = getattr(lib, name + "_send")(self._handle, *args, byref(pending), byref(err))
        if rc != 0:
            _raise(rc, err)
        return Pending(pending, _c.CALLS[name][1], keep)

    def _run(self, name: str, args: tuple, keep: object = None):
        """Sends and waits (AsyncClient awaits instead)."""
        return self._send(name, args, keep).wait()

    # ---- the daemon ----------------------------------------------------------

    def status(self) -> Status:
        return self._run("memos_status_get", ())

    def metrics(self) -> str:
        """The Prometheus text exposition (administrators only)."""
        return self._run("memos_metrics", ())

    def cluster_status(self) -> ClusterStatus:
        """The cluster's shards, owners and nodes (administrators only);
        enabled is False on a single memosd."""
        return self._run("memos_cluster_status_get", ())

    def cluster_step_down(self) -> ClusterStatus:
        """Asks the log's leader to give its role to another replica and waits
        for the election (administrators only); the answer's log names the new
        leader and previous_leader the one that stepped down."""
        return self._run("memos_cluster_step_down", ())

    # ---- cubes ---------------------------------------------------------------

    def cube_create(self, name: str, retriever: str | None = None, language: str = "") -> Cube:
        return self._run("memos_cube_create", (_b(name, "name"),
                                               _enum(MODES, retriever, "retriever"),
                                               _b(language, "language")))

    def cube_list(self) -> list[Cube]:
        return self._run("memos_cube_list", ())

    def cube_show(self, name: str) -> Cube:
        return self._run("memos_cube_show", (_b(name, "name"),))

    def cube_remove(self, name: str, force: bool = False) -> None:
        return self._run("memos_cube_remove", (_b(name, "name"), int(force)))

    def cube_share(self, name: str, tenant: str, write: bool = False) -> Cube:
        return self._run("memos_cube_share", (_b(name, "name"), _b(tenant, "tenant"),
                                              int(write)))

    def cube_unshare(self, name: str, tenant: str) -> Cube:
        return self._run("memos_cube_unshare", (_b(name, "name"), _b(tenant, "tenant")))

    # ---- memory items -----------------------------------------------------------

    @staticmethod
    def _new_item(a: _Args, text: str, tags=(), meta=None, importance: float = 0.0,
                  ttl_ms: int = 0, valid_from_ms: int = 0, valid_to_ms: int = 0,
                  session_id: str = "", sources=(), supersedes: int = 0,
                  idempotency_key: str = "", wait_searchable: bool = False,
                  allow_duplicate: bool = False) -> _c.NewItem:
        item = _c.NewItem()
        _c.lib().memos_new_item_init(byref(item))
        item.text = _b(text, "text")
        item.tags, item.n_tags = a.strings(tags, "tags")
        item.meta, item.n_meta = a.pairs(meta, "meta")
        item.importance = importance
        item.ttl_ms, item.valid_from_ms, item.valid_to_ms = ttl_ms, valid_from_ms, valid_to_ms
        item.session_id = _b(session_id, "session_id")
        item.sources, item.n_sources = a.ids(sources)
        item.supersedes = supersedes
        item.idempotency_key = _b(idempotency_key, "idempotency_key")
        item.wait_searchable, item.allow_duplicate = int(wait_searchable), int(allow_duplicate)
        a.keep.append(item)
        return item

    def add(self, cube: str, text: str, **fields) -> Item:
        """Writes version 1 of a new item. Keywords: tags, meta (dict),
        importance, ttl_ms, valid_from_ms, valid_to_ms, session_id, sources,
        supersedes, idempotency_key, wait_searchable, allow_duplicate."""
        a = _Args()
        item = self._new_item(a, text, **fields)
        return self._run("memos_add", (_b(cube, "cube"), byref(item)), a)

    def add_batch(self, cube: str, items: Iterable[str | Mapping]) -> list[Item]:
        """Adds every item (a text, or a dict of add()'s keywords with
        "text"), pipelined: all are sent before any reply is waited for.
        Returns them in order; if any failed, raises the first failure once
        every reply is in (the others are written)."""
        cube_b = _b(cube, "cube")
        pending = []
        for entry in items:
            a = _Args()
            fields = {"text": entry} if isinstance(entry, str) else dict(entry)
            item = self._new_item(a, **fields)
            pending.append(self._send("memos_add", (cube_b, byref(item)), a))
        results, first_error = [], None
        for p in pending:
            try:
                results.append(p.wait())
            except MemosError as e:
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        return results

    def get(self, cube: str, id: int, version: int = 0) -> Item:
        return self._run("memos_get", (_b(cube, "cube"), id, version))

    def update(self, cube: str, id: int, text: str, *, tags: Sequence[str] | None = None,
               meta: Mapping[str, str] | None = None, session_id: str = "",
               idempotency_key: str = "", wait_searchable: bool = False) -> Item:
        """A new version with `text`; tags and meta are replaced only when
        given (an empty one clears them)."""
        a = _Args()
        change = _c.ItemChange()
        _c.lib().memos_item_change_init(byref(change))
        change.text = _b(text, "text")
        if tags is not None:
            change.set_tags = 1
            change.tags, change.n_tags = a.strings(tags, "tags")
        if meta is not None:
            change.set_meta = 1
            change.meta, change.n_meta = a.pairs(meta, "meta")
        change.session_id = _b(session_id, "session_id")
        change.idempotency_key = _b(idempotency_key, "idempotency_key")
        change.wait_searchable = int(wait_searchable)
        a.keep.append(change)
        return self._run("memos_update", (_b(cube, "cube"), id, byref(change)), a)

    def remove(self, cube: str, id: int, idempotency_key: str = "") -> Item:
        """Deletes an item; returns the tombstone version."""
        return self._run("memos_remove", (_b(cube, "cube"), id,
                                          _b(idempotency_key, "idempotency_key")))

    def history(self, cube: str, id: int) -> list[Item]:
        return self._run("memos_history", (_b(cube, "cube"), id))

    def set_state(self, cube: str, id: int, state: str) -> Item:
        return self._run("memos_set_state", (_b(cube, "cube"), id,
                                             _enum(STATES, state, "state", none=-2)))

    def rollback(self, cube: str, id: int, version: int) -> Item:
        return self._run("memos_rollback", (_b(cube, "cube"), id, version))

    def diff(self, cube: str, id: int, from_version: int, to_version: int = 0) -> ItemDiff:
        return self._run("memos_diff", (_b(cube, "cube"), id, from_version, to_version))

    # ---- snapshots --------------------------------------------------------------

    def snapshot_create(self, cube: str, tag: str) -> Snapshot:
        return self._run("memos_snapshot_create", (_b(cube, "cube"), _b(tag, "tag")))

    def snapshot_list(self, cube: str) -> list[Snapshot]:
        return self._run("memos_snapshot_list", (_b(cube, "cube"),))

    def snapshot_diff(self, cube: str, from_tag: str, to_tag: str = "") -> list[SnapshotChange]:
        return self._run("memos_snapshot_diff", (_b(cube, "cube"), _b(from_tag, "from_tag"),
                                                 _b(to_tag, "to_tag")))

    # ---- search -----------------------------------------------------------------

    @staticmethod
    def _routing(routing: _c.Routing, budget, route, lambda_, reference_ms, context_tokens):
        routing.budget = _b(budget, "budget")
        routing.route = _b(route, "route")
        routing.lambda_ = lambda_
        routing.reference_ms = reference_ms
        routing.context_tokens = context_tokens

    def _search_options(self, a: _Args, k=10, mode=None, tags=(), any_tags=(), meta=None,
                        as_of_ms=0, include_archived=False, tiers=(), states=(),
                        recorded_since_ms=0, recorded_until_ms=0, valid_since_ms=0,
                        valid_until_ms=0, explain=False, more_cubes=(), recency_weight=0.0,
                        importance_weight=0.0, retention_weight=0.0, mmr_lambda=None,
                        fresh=False, min_score=None, budget=None, route=None, lambda_=0.0,
                        reference_ms=0, context_tokens=0) -> _c.SearchOptions:
        o = _c.SearchOptions()
        _c.lib().memos_search_options_init(byref(o))
        o.k = k
        o.mode = _enum(MODES, mode, "mode")
        o.tags, o.n_tags = a.strings(tags, "tags")
        o.any_tags, o.n_any_tags = a.strings(any_tags, "any_tags")
        o.meta, o.n_meta = a.pairs(meta, "meta")
        o.as_of_ms = as_of_ms
        o.include_archived = int(include_archived)
        o.tiers, o.n_tiers = a.ints([_enum(TIERS, t, "tiers") for t in tiers])
        o.states, o.n_states = a.ints([_enum(STATES, s, "states") for s in states])
        o.recorded_since_ms, o.recorded_until_ms = recorded_since_ms, recorded_until_ms
        o.valid_since_ms, o.valid_until_ms = valid_since_ms, valid_until_ms
        o.explain = int(explain)
        o.more_cubes, o.n_more_cubes = a.strings(more_cubes, "more_cubes")
        o.recency_weight, o.importance_weight = recency_weight, importance_weight
        o.retention_weight = retention_weight
        if mmr_lambda is not None:
            o.mmr_lambda = mmr_lambda
        o.fresh = int(fresh)
        if min_score is not None:
            o.has_min_score, o.min_score = 1, min_score
        self._routing(o.routing, budget, route, lambda_, reference_ms, context_tokens)
        a.keep.append(o)
        return o

    def search(self, cube: str, query: str, **options) -> list[Hit]:
        """Best first. Keywords: k, mode ("dense", "lexical", "hybrid"),
        tags (all), any_tags, meta (dict), as_of_ms, include_archived, tiers,
        states, recorded_since_ms / recorded_until_ms, valid_since_ms /
        valid_until_ms, explain, more_cubes, recency_weight,
        importance_weight, retention_weight, mmr_lambda, fresh, min_score."""
        a = _Args()
        o = self._search_options(a, **options)
        return self._run("memos_search", (_b(cube, "cube"), _b(query, "query"), byref(o)), a)

    def search_routed(self, cube: str, query: str, **options) -> RoutedSearch:
        """A routed search (memos(7), "Routing"): search()'s keywords and
        budget ("low", "mid", "high", "auto"), route ("retrieve=high,..."),
        lambda_, reference_ms, context_tokens."""
        a = _Args()
        o = self._search_options(a, **options)
        return self._run("memos_search_routed",
                         (_b(cube, "cube"), _b(query, "query"), byref(o)), a)

    # ---- archives (streamed) ------------------------------------------------------

    def export_cube(self, cube: str) -> Iterator[bytes]:
        """The cube's archive, chunk by chunk, as of when the export began.
        Stopping the iteration early stops the export."""
        chunks: queue.Queue = queue.Queue(maxsize=8)
        stop = threading.Event()
        done = object()

        @_c.WRITE_FN
        def write(_ctx, data, n):
            if stop.is_set():
                return 1
            chunks.put(ctypes.string_at(data, n))
            return 0

        def run():
            err = _c.Error()
            try:
                rc = _c.lib().memos_export_cube(self._handle, _b(cube, "cube"), write, None,
                                                None, byref(err))
                chunks.put(done if rc == 0 else _error_of(rc, err))
            except BaseException as e:  # to the iterating thread
                chunks.put(e)

        worker = threading.Thread(target=run, name="memos-export", daemon=True)
        worker.start()
        try:
            while True:
                chunk = chunks.get()
                if chunk is done:
                    return
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            stop.set()
            while worker.is_alive():  # unblock a writer waiting on a full queue
                try:
                    chunks.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    def import_cube(self, chunks: Iterable[bytes], name: str | None = None) -> Cube:
        """Imports an archive read from `chunks` (an iterable of bytes) as a
        new cube, `name` or the archive's. Nothing is left when it fails."""
        source = iter(chunks)
        pending = bytearray()
        failure: list[BaseException] = []

        @_c.READ_FN
        def read(_ctx, buf, cap):
            try:
                while len(pending) < cap:
                    chunk = next(source, None)
                    if chunk is None:
                        break
                    pending.extend(chunk)
            except BaseException as e:  # the archive ends here: memosd refuses it
                failure.append(e)
                return 0
            n = min(cap, len(pending))
            ctypes.memmove(buf, bytes(pending[:n]), n)
            del pending[:n]
            return n

        out = POINTER(_c.Cube)()
        err = _c.Error()
        rc = _c.lib().memos_import_cube(self._handle, read, None, _b(name, "name"), byref(out),
                                        byref(err))
        if failure:
            if rc == 0:
                _c.lib().memos_free(out)
            raise failure[0]
        if rc != 0:
            _raise(rc, err)
        try:
            return _convert(_c.Cube, out)
        finally:
            _c.lib().memos_free(out)

    # ---- the parametric tier ----------------------------------------------------------

    def param_add(self, cube: str, name: str, gguf: bytes, scale: float = 0.0,
                  description: str = "") -> Item:
        """Adds a LoRA adapter's GGUF as the parametric item `name`."""
        out = POINTER(_c.Item)()
        err = _c.Error()
        rc = _c.lib().memos_param_add(self._handle, _b(cube, "cube"), _b(name, "name"),
                                      bytes(gguf), len(gguf), scale,
                                      _b(description, "description"), byref(out), byref(err))
        if rc != 0:
            _raise(rc, err)
        try:
            return _convert(_c.Item, out)
        finally:
            _c.lib().memos_free(out)

    def param_export(self, cube: str, name: str, version: int = 0) -> bytes:
        """The adapter's GGUF (`version` 0: the head)."""
        parts: list[bytes] = []

        @_c.WRITE_FN
        def write(_ctx, data, n):
            parts.append(ctypes.string_at(data, n))
            return 0

        err = _c.Error()
        rc = _c.lib().memos_param_export(self._handle, _b(cube, "cube"), _b(name, "name"),
                                         version, write, None, None, byref(err))
        if rc != 0:
            _raise(rc, err)
        return b"".join(parts)

    def param_cvec(self, cube: str, name: str, positive: str, negative: str,
                   scale: float = 0.0, description: str = "") -> Item:
        return self._run("memos_param_cvec", (_b(cube, "cube"), _b(name, "name"),
                                              _b(positive, "positive"),
                                              _b(negative, "negative"), scale,
                                              _b(description, "description")))

    def param_list(self, cube: str) -> list[Item]:
        return self._run("memos_param_list", (_b(cube, "cube"),))

    def param_show(self, cube: str, name: str, version: int = 0) -> Item:
        return self._run("memos_param_show", (_b(cube, "cube"), _b(name, "name"), version))

    def param_remove(self, cube: str, name: str) -> Item:
        return self._run("memos_param_remove", (_b(cube, "cube"), _b(name, "name")))

    def param_distill(self, cube: str, name: str, *, tag: str = "", ids: Sequence[int] = (),
                      rank: int = 0, steps: int = 0, scale: float = 0.0,
                      description: str = "") -> Job:
        a = _Args()
        args = _c.DistillArgs()
        _c.lib().memos_distill_args_init(byref(args))
        args.cube, args.name, args.tag = _b(cube, "cube"), _b(name, "name"), _b(tag, "tag")
        args.ids, args.n_ids = a.ids(ids)
        args.rank, args.steps, args.scale = rank, steps, scale
        args.description = _b(description, "description")
        a.keep.append(args)
        return self._run("memos_param_distill", (byref(args),), a)

    # ---- jobs and plugins ----------------------------------------------------------------

    def job_list(self) -> list[Job]:
        return self._run("memos_job_list", ())

    def job_show(self, id: int) -> Job:
        return self._run("memos_job_show", (id,))

    def job_cancel(self, id: int) -> Job:
        return self._run("memos_job_cancel", (id,))

    def plugin_list(self) -> list[PluginInfo]:
        return self._run("memos_plugin_list", ())

    def plugin_info(self, name: str) -> PluginInfo:
        return self._run("memos_plugin_info_get", (_b(name, "name"),))

    def plugin_reload(self, name: str) -> PluginInfo:
        return self._run("memos_plugin_reload", (_b(name, "name"),))

    # ---- tenants ------------------------------------------------------------------------

    def policy_show(self, tenant: str = "") -> PolicyInfo:
        return self._run("memos_policy_show", (_b(tenant, "tenant"),))

    def policy_reload(self) -> PolicyInfo:
        return self._run("memos_policy_reload", ())

    def tenant_usage(self, tenant: str = "") -> TenantUsage:
        return self._run("memos_tenant_usage_get", (_b(tenant, "tenant"),))

    # ---- generation and the activation tier ---------------------------------------------

    def chat(self, cube: str, prompt: str, *, on_piece=None, k: int = 5,
             ids: Sequence[int] = (), mode: str | None = None, activate: bool = False,
             no_reuse: bool = False, max_tokens: int = 128, temperature: float = 0.0,
             top_k: int = 0, top_p: float = 0.0, seed: int = 0,
             adapters: Mapping[str, float] | None = None, no_adapters: bool = False,
             budget: str | None = None, route: str | None = None, lambda_: float = 0.0,
             reference_ms: int = 0, context_tokens: int = 0) -> ChatReply:
        """Answers `prompt` with the executor, the cube's memories ahead of it.
        on_piece(ChatPiece): called with each piece as it comes, on the
        connection's reader thread (return soon; call nothing on this
        client from it). adapters: {name: scale (0: its own)}."""
        a = _Args()
        o = _c.ChatOptions()
        _c.lib().memos_chat_options_init(byref(o))
        o.k = k
        o.ids, o.n_ids = a.ids(ids)
        o.mode = _enum(MODES, mode, "mode")
        o.activate, o.no_reuse = int(activate), int(no_reuse)
        o.max_tokens, o.temperature, o.top_k, o.top_p, o.seed = (max_tokens, temperature, top_k,
                                                                   top_p, seed)
        if adapters:
            uses = (_c.AdapterUse * len(adapters))(
                *(_c.AdapterUse(_b(n, "adapters"), s) for n, s in adapters.items()))
            a.keep.append(uses)
            o.adapters, o.n_adapters = uses, len(adapters)
        o.no_adapters = int(no_adapters)
        self._routing(o.routing, budget, route, lambda_, reference_ms, context_tokens)
        a.keep.append(o)
        if on_piece is None:
            return self._run("memos_chat", (_b(cube, "cube"), _b(prompt, "prompt"), byref(o)), a)
        read_piece = reader(_c.ChatPiece)

        @_c.PIECE_FN
        def piece(_ctx, p):
            try:
                on_piece(read_piece(p.contents))
            except Exception:  # a C callback cannot raise: report, go on
                import traceback
                traceback.print_exc()

        a.keep.append(piece)
        return self._run("memos_chat_stream",
                         (_b(cube, "cube"), _b(prompt, "prompt"), byref(o), piece, None), a)

    def kv_prefill(self, cube: str, ids: Sequence[int] = (), top: int = 0) -> Activation:
        a = _Args()
        array, n = a.ids(ids)
        return self._run("memos_kv_prefill", (_b(cube, "cube"), array, n, top), a)

    def kv_list(self, cube: str) -> list[Activation]:
        return self._run("memos_kv_list", (_b(cube, "cube"),))

    def kv_remove(self, cube: str, id: int) -> Activation:
        return self._run("memos_kv_remove", (_b(cube, "cube"), id))

    def kv_stats(self) -> KvStats:
        return self._run("memos_kv_stats_get", ())

    # ---- the scheduler ------------------------------------------------------------------

    def sched_status(self, cube: str = "") -> SchedStatus:
        return self._run("memos_sched_status_get", (_b(cube, "cube"),))

    def sched_log(self, cube: str = "", max: int = 0) -> list[SchedDecision]:
        return self._run("memos_sched_log", (_b(cube, "cube"), max))

    def sched_run(self) -> SchedPass:
        return self._run("memos_sched_run", ())

    def explain(self, cube: str, id: int) -> Explanation:
        return self._run("memos_explain", (_b(cube, "cube"), id))


def _error_of(code: int, err: _c.Error) -> MemosError:
    try:
        _raise(code, err)
    except MemosError as e:
        return e
    raise AssertionError("unreachable")

