"""The MCP tools: each one's schemas, annotations and handler, and the
result or error it answers (MCP, "Tools").

A result carries the answer twice, as MCP 2025-06-18 asks of a tool with
an outputSchema: as structuredContent, and as compact JSON text for hosts
that read only content. memosd's refusals and arguments that fail their
schema are tool errors (isError: true): the model sees the message and can
correct its call; only a tool that does not exist is a protocol error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .arguments import Arguments, InvalidArguments
from .daemon import Daemon
from .server import INVALID_PARAMS, RpcError
from .timestamps import TIME_SCHEMA
from .views import (CUBE_SCHEMA, HIT_SCHEMA, ITEM_SCHEMA, cube_view, finite_or_none, hit_view,
                    item_view)

log = logging.getLogger("memos-mcp")

MODES = ("dense", "lexical", "hybrid")
# A model's context is the limit, not memosd's search.max_k.
MAX_K = 100
MAX_CHAT_TOKENS = 8192

# ---- schema pieces ----------------------------------------------------------------

_CUBE = {"type": "string", "minLength": 1, "description": "the cube's name"}
_ID = {"type": "string", "description": "a memory's id, the 13 characters the tools return"}
_TAGS = {"type": "array", "items": {"type": "string"}}
_METADATA = {"type": "object", "additionalProperties": {"type": "string"},
             "description": "key/value pairs, both strings"}


def _input(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def _output(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _annotations(*, read_only: bool, destructive: bool = False,
                 idempotent: bool = False) -> dict[str, bool]:
    # openWorldHint false: every tool acts on memosd alone.
    return {"readOnlyHint": read_only, "destructiveHint": destructive,
            "idempotentHint": idempotent, "openWorldHint": False}


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    annotations: dict[str, bool]
    needs_executor: bool = False  # listed only while memosd has a model

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description,
                "inputSchema": self.input_schema, "outputSchema": self.output_schema,
                "annotations": dict(self.annotations, title=self.title)}


TOOLS: tuple[Tool, ...] = (
    Tool("add_memory", "Add a memory",
         "Stores a new memory (a short self-contained fact or note) in a cube and returns it "
         "with its id. To record that a fact changed, pass the old memory's id as supersedes: "
         "the old one stops holding where the new one starts, and is kept.",
         _input({"cube": _CUBE,
                 "text": {"type": "string", "minLength": 1, "description": "the memory itself"},
                 "tags": dict(_TAGS, description="labels to filter searches by"),
                 "metadata": _METADATA,
                 "importance": {"type": "number", "minimum": 0, "maximum": 1,
                                "description": "0 to 1; important memories are kept longer"},
                 "valid_from": dict(TIME_SCHEMA, description="when the fact starts to hold "
                                    "(default: now); " + TIME_SCHEMA["description"]),
                 "valid_to": dict(TIME_SCHEMA, description="when the fact stops holding "
                                  "(default: open); " + TIME_SCHEMA["description"]),
                 "supersedes": dict(_ID, description="the id of a memory this one replaces")},
                ["cube", "text"]),
         ITEM_SCHEMA, _annotations(read_only=False)),
    Tool("search_memories", "Search memories",
         "Finds the memories that best answer a query, best first, among those that hold now "
         "(or at valid_at). Searches the first cube named, ranking the others' memories "
         "together with its own. Sees every write answered before it.",
         _input({"query": {"type": "string", "minLength": 1,
                           "description": "a question or keywords"},
                 "cubes": {"type": "array", "items": _CUBE, "minItems": 1,
                           "description": "the cubes to search, at least one"},
                 "k": {"type": "integer", "minimum": 1, "maximum": MAX_K,
                       "description": "how many memories at most (default 10)"},
                 "mode": {"type": "string", "enum": list(MODES),
                          "description": "dense (meaning), lexical (words, BM25) or hybrid "
                                         "(both); default: the cube's own"},
                 "tags": dict(_TAGS, description="only memories with all of these tags"),
                 "recorded_since": dict(TIME_SCHEMA, description="only memories written at "
                                        "or after this time; " + TIME_SCHEMA["description"]),
                 "recorded_until": dict(TIME_SCHEMA, description="only memories written "
                                        "before this time; " + TIME_SCHEMA["description"]),
                 "valid_at": dict(TIME_SCHEMA, description="the facts that held at this time "
                                  "instead of now; " + TIME_SCHEMA["description"])},
                ["query", "cubes"]),
         _output({"hits": {"type": "array", "items": HIT_SCHEMA}}),
         _annotations(read_only=True, idempotent=True)),
    Tool("get_memory", "Get a memory",
         "Returns one memory by id: its latest version, or the version asked for.",
         _input({"cube": _CUBE, "id": _ID,
                 "version": {"type": "integer", "minimum": 0,
                             "description": "a version number; 0 or absent: the latest"}},
                ["cube", "id"]),
         ITEM_SCHEMA, _annotations(read_only=True, idempotent=True)),
    Tool("update_memory", "Update a memory",
         "Writes a new version of a memory with a new text; the earlier versions are kept "
         "(memory_history). Tags and metadata are replaced only when given.",
         _input({"cube": _CUBE, "id": _ID,
                 "text": {"type": "string", "minLength": 1, "description": "the new text"},
                 "tags": dict(_TAGS, description="the new tags (an empty array clears them)"),
                 "metadata": dict(_METADATA, description="the new metadata "
                                  "(an empty object clears it)")},
                ["cube", "id", "text"]),
         ITEM_SCHEMA, _annotations(read_only=False)),
    Tool("delete_memory", "Delete a memory",
         "Deletes a memory: it is no longer found, and its earlier versions stay readable. "
         "Returns the deletion's version.",
         _input({"cube": _CUBE, "id": _ID}, ["cube", "id"]),
         ITEM_SCHEMA, _annotations(read_only=False, destructive=True)),
    Tool("memory_history", "Memory history",
         "Every version of a memory, oldest first.",
         _input({"cube": _CUBE, "id": _ID}, ["cube", "id"]),
         _output({"versions": {"type": "array", "items": ITEM_SCHEMA}}),
         _annotations(read_only=True, idempotent=True)),
    Tool("list_cubes", "List cubes",
         "The cubes you can read: your own and those shared with you.",
         _input({}, []),
         _output({"cubes": {"type": "array", "items": CUBE_SCHEMA}}),
         _annotations(read_only=True, idempotent=True)),
    Tool("create_cube", "Create a cube",
         "Creates a cube, a named container of memories (one per person, project or topic).",
         _input({"name": dict(_CUBE, description="the new cube's name"),
                 "retriever": {"type": "string", "enum": list(MODES),
                               "description": "how the cube is searched by default "
                                              "(default: memosd's, hybrid)"}},
                ["name"]),
         CUBE_SCHEMA, _annotations(read_only=False)),
    Tool("chat", "Ask over memories",
         "Answers a prompt with memosd's language model, the cube's memories that best match "
         "it placed ahead of it. Returns the answer and the ids of the memories it was given.",
         _input({"cube": _CUBE,
                 "prompt": {"type": "string", "minLength": 1},
                 "k": {"type": "integer", "minimum": 1, "maximum": MAX_K,
                       "description": "how many memories to give the model (default 5)"},
                 "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_CHAT_TOKENS,
                                "description": "the longest answer, in tokens (default 128)"}},
                ["cube", "prompt"]),
         _output({"text": {"type": "string"},
                  "memories": {"type": "array", "items": {"type": "string"}},
                  "prompt_tokens": {"type": "integer"},
                  "generated_tokens": {"type": "integer"},
                  "total_ms": {"type": ["number", "null"]},
                  "finish": {"type": "string"}}),
         _annotations(read_only=True), needs_executor=True),
)

BY_NAME = {tool.name: tool for tool in TOOLS}


def tool_result(structured: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured}


def tool_error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


def daemon_error_text(e: Any) -> str:
    """A MemosError as the model reads it: the code's name, then memosd's
    message, and when a retry may succeed, that."""
    text = f"{e.code}: {e.message}"
    if getattr(e, "retry_after_ms", 0):
        text += f" (retry after {e.retry_after_ms} ms)"
    elif getattr(e, "retryable", False):
        text += " (retryable)"
    return text


class Tools:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.memos = daemon.memos

    def list(self) -> list[dict[str, Any]]:
        """Every tool, chat only while memosd has a model to chat with."""
        executor = self._has_executor()
        return [t.to_json() for t in TOOLS if executor or not t.needs_executor]

    def _has_executor(self) -> bool:
        try:
            return bool(self.daemon.call(lambda c: c.kv_stats(), idempotent=True).model)
        except self.memos.MemosError as e:
            log.warning("listing tools without chat: memosd did not say whether it has a "
                        "model (%s)", daemon_error_text(e))
            return False

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The CallToolResult of one call. chat is served even while not
        listed: memosd then says why it cannot chat, which explains more
        than an unknown tool would."""
        tool = BY_NAME.get(name)
        if tool is None:
            raise RpcError(INVALID_PARAMS, f"Unknown tool: {name}")
        # Each tool runs as the method of its name, _add_memory...
        handler: Callable[[Arguments], dict[str, Any]] = getattr(self, "_" + tool.name)
        try:
            args = Arguments(arguments, tool.input_schema["properties"])
            return tool_result(handler(args))
        except InvalidArguments as e:
            return tool_error(f"invalid arguments: {e}")
        except self.memos.MemosError as e:
            return tool_error(daemon_error_text(e))

    # ---- the handlers: arguments read first, so a bad call never reaches memosd ----

    def _id(self, args: Arguments, name: str = "id", required: bool = True) -> int:
        return args.item_id(name, self.memos.parse_id, required=required)

    def _item(self, item: Any) -> dict[str, Any]:
        return item_view(item, self.memos.format_id)

    def _add_memory(self, args: Arguments) -> dict[str, Any]:
        cube = args.string("cube", required=True, allow_empty=False)
        text = args.string("text", required=True, allow_empty=False)
        fields = {"tags": args.strings("tags"), "meta": args.string_map("metadata"),
                  "importance": args.number("importance", default=0.0, minimum=0, maximum=1),
                  "valid_from_ms": args.time("valid_from"), "valid_to_ms": args.time("valid_to"),
                  "supersedes": self._id(args, "supersedes", required=False)}
        return self._item(self.daemon.call(lambda c: c.add(cube, text, **fields)))

    def _search_memories(self, args: Arguments) -> dict[str, Any]:
        query = args.string("query", required=True, allow_empty=False)
        cubes = args.strings("cubes", required=True)
        if not cubes or not all(name.strip() for name in cubes):
            raise InvalidArguments("cubes must name at least one cube, and no empty name")
        options = {"k": args.integer("k", default=10, minimum=1, maximum=MAX_K),
                   "mode": args.choice("mode", MODES), "tags": args.strings("tags"),
                   "recorded_since_ms": args.time("recorded_since"),
                   "recorded_until_ms": args.time("recorded_until"),
                   "as_of_ms": args.time("valid_at"),
                   "more_cubes": cubes[1:],
                   # An agent searches for what it just wrote.
                   "fresh": True}
        hits = self.daemon.call(lambda c: c.search(cubes[0], query, **options), idempotent=True)
        return {"hits": [hit_view(h, self.memos.format_id) for h in hits]}

    def _get_memory(self, args: Arguments) -> dict[str, Any]:
        cube = args.string("cube", required=True, allow_empty=False)
        item_id = self._id(args)
        version = args.integer("version", default=0, minimum=0, maximum=2**32 - 1)
        return self._item(self.daemon.call(lambda c: c.get(cube, item_id, version),
                                          idempotent=True))

    def _update_memory(self, args: Arguments) -> dict[str, Any]:
        cube = args.string("cube", required=True, allow_empty=False)
        item_id = self._id(args)
        text = args.string("text", required=True, allow_empty=False)
        tags = args.strings("tags") if args.has("tags") else None
        meta = args.string_map("metadata")
        return self._item(self.daemon.call(
            lambda c: c.update(cube, item_id, text, tags=tags, meta=meta)))

    def _delete_memory(self, args: Arguments) -> dict[str, Any]:
        cube = args.string("cube", required=True, allow_empty=False)
        item_id = self._id(args)
        return self._item(self.daemon.call(lambda c: c.remove(cube, item_id)))

    def _memory_history(self, args: Arguments) -> dict[str, Any]:
        cube = args.string("cube", required=True, allow_empty=False)
        item_id = self._id(args)
        versions = self.daemon.call(lambda c: c.history(cube, item_id), idempotent=True)
        return {"versions": [self._item(v) for v in versions]}

    def _list_cubes(self, args: Arguments) -> dict[str, Any]:
        cubes = self.daemon.call(lambda c: c.cube_list(), idempotent=True)
        return {"cubes": [cube_view(c) for c in cubes]}

    def _create_cube(self, args: Arguments) -> dict[str, Any]:
        name = args.string("name", required=True, allow_empty=False)
        retriever = args.choice("retriever", MODES)
        return cube_view(self.daemon.call(lambda c: c.cube_create(name, retriever)))

    def _chat(self, args: Arguments) -> dict[str, Any]:
        cube = args.string("cube", required=True, allow_empty=False)
        prompt = args.string("prompt", required=True, allow_empty=False)
        k = args.integer("k", default=5, minimum=1, maximum=MAX_K)
        max_tokens = args.integer("max_tokens", default=128, minimum=1, maximum=MAX_CHAT_TOKENS)
        reply = self.daemon.call(lambda c: c.chat(cube, prompt, k=k, max_tokens=max_tokens))
        return {"text": reply.text,
                "memories": [self.memos.format_id(m) for m in reply.memories],
                "prompt_tokens": reply.prompt_tokens,
                "generated_tokens": reply.generated_tokens,
                "total_ms": finite_or_none(reply.total_ms),
                "finish": reply.finish}
