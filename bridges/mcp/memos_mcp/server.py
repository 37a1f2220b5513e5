"""JSON-RPC 2.0 over newline-delimited stdio, as MCP's stdio transport
frames it: one JSON message a line each way, nothing else on stdout.

The server answers every request (a message with a method and an id) with
exactly one reply, and never answers a notification (a method, no id).
Whatever a line holds, it costs at most one error reply: the loop catches
everything a handler raises, so a hostile peer cannot stop it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

log = logging.getLogger("memos-mcp")

# JSON-RPC 2.0's error codes, and MCP's for a resource that is not there.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
RESOURCE_NOT_FOUND = -32002

# A line longer than this is refused unread: memosd refuses messages over
# 16 MiB, so a request this large could not be served anyway, and reading
# it whole would let a peer make us hold any amount of memory.
MAX_LINE_BYTES = 16 * 1024 * 1024

# Requests take their parameters as one object (params) and answer one.
Handler = Callable[[dict[str, Any]], dict[str, Any]]
Notification = Callable[[dict[str, Any]], None]


class RpcError(Exception):
    """A request refused with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not JSON")


def _is_valid_id(value: Any) -> bool:
    # MCP narrows JSON-RPC's ids to strings and integers (never null); bool
    # is an int to Python but not to JSON.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def error_reply(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def encode(message: dict[str, Any]) -> bytes:
    """One line of JSON. Newlines inside strings are escaped by json, so the
    line holds none. UTF-8 as is, unless a string holds a lone surrogate
    (an id such as "\\ud800" echoed back), which only ASCII escapes carry."""
    try:
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        text = json.dumps(message, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return text.encode("ascii") + b"\n"


class Server:
    """Dispatches each line to `methods` (requests) or `notifications`."""

    def __init__(self, methods: Mapping[str, Handler],
                 notifications: Mapping[str, Notification],
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.methods = methods
        self.notifications = notifications
        self.max_line_bytes = max_line_bytes

    # ---- one message ------------------------------------------------------------

    def handle_line(self, line: bytes) -> dict[str, Any] | None:
        """The reply to one line (without its newline), or None when it
        gets none: a notification, a response, a blank line."""
        if not line.strip():
            return None
        try:
            message = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            # RecursionError: nesting deeper than Python's stack.
            return error_reply(None, RpcError(PARSE_ERROR, f"Parse error: {_first_line(e)}"))
        return self.handle_message(message)

    def handle_message(self, message: Any) -> dict[str, Any] | None:
        if isinstance(message, list):
            # Revision 2025-06-18 took batches out of MCP.
            return error_reply(None, RpcError(INVALID_REQUEST,
                                              "Invalid Request: batches are not supported"))
        if not isinstance(message, dict):
            return error_reply(None, RpcError(INVALID_REQUEST,
                                              "Invalid Request: a message is a JSON object"))
        has_id = "id" in message
        request_id = message.get("id")
        method = message.get("method")
        if method is None and ("result" in message or "error" in message) and has_id:
            # A response: this server sends no requests, so none is awaited.
            log.info("ignored a response to id %r, which this server never sent", request_id)
            return None
        if not has_id:
            if isinstance(method, str):
                self._notify(method, message.get("params"), message.get("jsonrpc"))
                return None
            return error_reply(None, RpcError(
                INVALID_REQUEST, "Invalid Request: a request needs a method and an id"))
        if not _is_valid_id(request_id):
            return error_reply(None, RpcError(
                INVALID_REQUEST, "Invalid Request: the id must be a string or an integer"))
        if message.get("jsonrpc") != "2.0":
            return error_reply(request_id, RpcError(INVALID_REQUEST,
                                                    'Invalid Request: jsonrpc must be "2.0"'))
        if not isinstance(method, str):
            return error_reply(request_id, RpcError(INVALID_REQUEST,
                                                    "Invalid Request: method must be a string"))
        return self._request(request_id, method, message.get("params"))

    def _request(self, request_id: Any, method: str, params: Any) -> dict[str, Any]:
        handler = self.methods.get(method)
        if handler is None:
            return error_reply(request_id, RpcError(METHOD_NOT_FOUND,
                                                    f"Method not found: {method}"))
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            return error_reply(request_id, RpcError(INVALID_PARAMS,
                                                    "Invalid params: params must be an object"))
        try:
            result = handler(params)
        except RpcError as e:
            return error_reply(request_id, e)
        except Exception as e:  # a bug must cost one reply, not the server
            log.exception("%s failed", method)
            return error_reply(request_id, RpcError(INTERNAL_ERROR,
                                                    f"Internal error: {_first_line(e)}"))
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def _notify(self, method: str, params: Any, version: Any) -> None:
        # A notification is never answered, even a malformed one: the peer
        # waits for no reply, so an error would only confuse it.
        handler = self.notifications.get(method)
        if handler is None or version != "2.0":
            log.debug("ignored notification %s", method)
            return
        try:
            handler(params if isinstance(params, dict) else {})
        except Exception:
            log.exception("notification %s failed", method)

    # ---- the stream ---------------------------------------------------------------

    def serve(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        """Serves until stdin ends."""
        while True:
            line = stdin.readline(self.max_line_bytes + 1)
            if not line:
                return
            if len(line) > self.max_line_bytes and not line.endswith(b"\n"):
                reply: dict[str, Any] | None = error_reply(None, self._skip_long_line(stdin))
            else:
                reply = self.handle_line(line.rstrip(b"\r\n"))
            if reply is not None:
                self._write(stdout, reply)

    def _skip_long_line(self, stdin: BinaryIO) -> RpcError:
        # The rest of the line is read in pieces and dropped.
        while True:
            rest = stdin.readline(65536)
            if not rest or rest.endswith(b"\n"):
                break
        return RpcError(INVALID_REQUEST,
                        f"Invalid Request: a message is at most {self.max_line_bytes} bytes")

    @staticmethod
    def _write(stdout: BinaryIO, reply: dict[str, Any]) -> None:
        try:
            data = encode(reply)
        except (TypeError, ValueError) as e:  # a result JSON cannot carry (NaN)
            log.error("could not encode the reply to id %r: %s", reply.get("id"), e)
            data = encode(error_reply(reply.get("id"), RpcError(
                INTERNAL_ERROR, f"Internal error: the result is not JSON ({e})")))
        stdout.write(data)
        stdout.flush()


def _first_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0] if text.strip() else type(e).__name__
