"""A stand-in for the memos package, for the tests of memos-mcp's protocol
layer: the names memos_mcp uses (Client.connect, the errors, format_id and
parse_id), over cubes kept in memory, so that the tests need neither memosd
nor libmemos. Each client records its calls, so tests can check what
memos-mcp asked memosd for."""

from __future__ import annotations

import dataclasses
from typing import Any


class MemosError(Exception):
    code = "unknown"

    def __init__(self, message: str, *, retryable: bool = False, retry_after_ms: int = 0):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms


class BadRequest(MemosError):
    code = "badRequest"


class NotFound(MemosError):
    code = "notFound"


class AlreadyExists(MemosError):
    code = "alreadyExists"


class Unavailable(MemosError):
    code = "unavailable"


class RateLimited(MemosError):
    code = "rateLimited"


class ConnectFailed(MemosError):
    code = "connectFailed"


class ConnectionLost(MemosError):
    code = "connectionLost"


class ProtocolError(MemosError):
    code = "protocolError"


_DIGITS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32, as memctl


def format_id(item_id: int) -> str:
    text = ""
    for _ in range(13):
        item_id, digit = divmod(item_id, 32)
        text = _DIGITS[digit] + text
    return text


def parse_id(text: str) -> int:
    if len(text) != 13 or any(c not in _DIGITS for c in text):
        raise BadRequest(f"not an item id: {text!r}")
    value = 0
    for c in text:
        value = value * 32 + _DIGITS.index(c)
    return value


@dataclasses.dataclass
class Item:
    id: int
    version: int
    text: str
    tags: list[str]
    meta: dict[str, str]
    created_at_ms: int = 1_700_000_000_000
    recorded_at_ms: int = 1_700_000_000_000
    deleted: bool = False
    tier: str = "plaintext"
    state: str = "active"
    importance: float = 0.0
    expires_at_ms: int = 0
    valid_from_ms: int = 1_700_000_000_000
    valid_to_ms: int = 0
    writer_uid: int = 1000
    session_id: str = ""
    sources: list[int] = dataclasses.field(default_factory=list)
    cube_version: int = 1
    hits: int = 0
    last_access_ms: int = 0


@dataclasses.dataclass
class Cube:
    name: str
    id: int = 1
    owner_uid: int = 1000
    created_at_ms: int = 1_700_000_000_000
    embedder: str = "hash-v1"
    dimension: int = 256
    live_items: int = 0
    head_version: int = 0
    default_retriever: str = "hybrid"
    language: str = "english"
    indexes: str = ""
    shared_by: str = ""
    shared_write: bool = False


@dataclasses.dataclass
class Hit:
    item: Item
    score: float
    cube: str


@dataclasses.dataclass
class Snapshot:
    tag: str
    cube_version: int
    created_at_ms: int
    live_items: int
    created_by: int


@dataclasses.dataclass
class KvStats:
    model: str


@dataclasses.dataclass
class ChatReply:
    text: str
    memories: list[int]
    prompt_tokens: int
    generated_tokens: int
    total_ms: float
    finish: str


class Memosd:
    """What a fake memosd holds: cubes of item histories. `model`: the
    executor's model ("": none). `fail_next`: an error the next call raises."""

    def __init__(self, model: str = "") -> None:
        self.model = model
        self.cubes: dict[str, dict[int, list[Item]]] = {}
        self.next_id = 1 << 40
        self.fail_next: MemosError | None = None
        self.connects = 0
        self.calls: list[tuple[str, tuple, dict]] = []


class Client:
    # The memosd every connect() reaches; tests replace it. `refuse`: an
    # error connect() raises (memosd not running).
    memosd = Memosd()
    refuse: MemosError | None = None

    def __init__(self, memosd: Memosd) -> None:
        self.memosd = memosd
        self.closed = False

    @classmethod
    def connect(cls, socket: str | None = None, *, wait_searchable: bool = False) -> "Client":
        if cls.refuse is not None:
            raise cls.refuse
        cls.memosd.connects += 1
        return cls(cls.memosd)

    def close(self) -> None:
        self.closed = True

    def __getattribute__(self, name: str) -> Any:
        # Every public call is recorded, and may be made to fail.
        attr = object.__getattribute__(self, name)
        if name.startswith("_") or name in ("memosd", "closed", "close") or not callable(attr):
            return attr
        memosd = object.__getattribute__(self, "memosd")

        def recorded(*args: Any, **kwargs: Any) -> Any:
            memosd.calls.append((name, args, kwargs))
            if memosd.fail_next is not None:
                error, memosd.fail_next = memosd.fail_next, None
                raise error
            return attr(*args, **kwargs)
        return recorded

    # ---- cubes ----

    def _cube(self, name: str) -> dict[int, list[Item]]:
        if name not in self.memosd.cubes:
            raise NotFound(f"no cube named {name!r}")
        return self.memosd.cubes[name]

    def _show(self, name: str) -> Cube:
        items = self._cube(name)
        live = sum(1 for h in items.values() if not h[-1].deleted)
        return Cube(name=name, live_items=live, head_version=sum(len(h) for h in items.values()))

    def kv_stats(self) -> KvStats:
        return KvStats(model=self.memosd.model)

    def cube_create(self, name: str, retriever: str | None = None, language: str = "") -> Cube:
        if name in self.memosd.cubes:
            raise AlreadyExists(f"cube {name!r} exists")
        self.memosd.cubes[name] = {}
        return dataclasses.replace(self._show(name), default_retriever=retriever or "hybrid")

    def cube_list(self) -> list[Cube]:
        return [self._show(name) for name in self.memosd.cubes]

    def cube_show(self, name: str) -> Cube:
        return self._show(name)

    def snapshot_list(self, cube: str) -> list[Snapshot]:
        self._cube(cube)
        return [Snapshot("before", 1, 1_700_000_000_000, 1, 1000)]

    # ---- items ----

    def _history(self, cube: str, item_id: int) -> list[Item]:
        history = self._cube(cube).get(item_id)
        if history is None:
            raise NotFound(f"no item {format_id(item_id)}")
        return history

    def add(self, cube: str, text: str, *, tags=(), meta=None, importance: float = 0.0,
            valid_from_ms: int = 0, valid_to_ms: int = 0, supersedes: int = 0, **_: Any) -> Item:
        items = self._cube(cube)
        if not text:
            raise BadRequest("an item needs a text")
        self.memosd.next_id += 1
        item = Item(self.memosd.next_id, 1, text, list(tags), dict(meta or {}),
                    importance=importance, valid_from_ms=valid_from_ms or 1_700_000_000_000,
                    valid_to_ms=valid_to_ms)
        items[item.id] = [item]
        return item

    def get(self, cube: str, id: int, version: int = 0) -> Item:
        history = self._history(cube, id)
        if version:
            if version > len(history):
                raise NotFound(f"no version {version}")
            return history[version - 1]
        return history[-1]

    def update(self, cube: str, id: int, text: str, *, tags=None, meta=None, **_: Any) -> Item:
        history = self._history(cube, id)
        last = history[-1]
        item = dataclasses.replace(last, version=last.version + 1, text=text,
                                   tags=list(last.tags if tags is None else tags),
                                   meta=dict(last.meta if meta is None else meta))
        history.append(item)
        return item

    def remove(self, cube: str, id: int, idempotency_key: str = "") -> Item:
        history = self._history(cube, id)
        item = dataclasses.replace(history[-1], version=history[-1].version + 1, deleted=True,
                                   state="deleted")
        history.append(item)
        return item

    def history(self, cube: str, id: int) -> list[Item]:
        return list(self._history(cube, id))

    def search(self, cube: str, query: str, *, k: int = 10, more_cubes=(), **_: Any) -> list[Hit]:
        hits = []
        for name in (cube, *more_cubes):
            for history in self._cube(name).values():
                item = history[-1]
                words = set(query.lower().split())
                score = len(words & set(item.text.lower().split())) / max(len(words), 1)
                if not item.deleted and score > 0:
                    hits.append(Hit(item, score, name))
        hits.sort(key=lambda h: -h.score)
        return hits[:k]

    def chat(self, cube: str, prompt: str, *, k: int = 5, max_tokens: int = 128) -> ChatReply:
        if not self.memosd.model:
            raise Unavailable("no model executor")
        used = [h.item.id for h in self.search(cube, prompt, k=k)]
        return ChatReply("an answer", used, 12, 2, 3.5, "stop")
