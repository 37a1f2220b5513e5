"""Cubes as MCP resources: memos://cube/NAME, one per cube the caller can
read, whose contents are the cube's description and its snapshots.

memosd has no call that lists a cube's items (search needs a query), so a
resource describes the cube rather than dumping it; the tools read memories.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

from .daemon import Daemon
from .server import INTERNAL_ERROR, INVALID_PARAMS, RESOURCE_NOT_FOUND, RpcError
from .tools import daemon_error_text
from .views import cube_view, snapshot_view

URI_PREFIX = "memos://cube/"
MIME_TYPE = "application/json"


def cube_uri(name: str) -> str:
    # Percent-encoded, so that a name with "/" or "?" is one path segment.
    return URI_PREFIX + quote(name, safe="")


def cube_name(uri: str) -> str:
    """The cube a URI names; RESOURCE_NOT_FOUND if it names none."""
    name = unquote(uri[len(URI_PREFIX):]) if uri.startswith(URI_PREFIX) else ""
    if not name:
        raise RpcError(RESOURCE_NOT_FOUND,
                       f"Resource not found: {uri} (this server's are {URI_PREFIX}NAME)",
                       {"uri": uri})
    return name


def _description(cube: Any) -> str:
    text = f"memory cube: {cube.live_items} live memories, searched {cube.default_retriever}"
    if cube.shared_by:
        text += f", shared by {cube.shared_by}" + (" (writable)" if cube.shared_write else "")
    return text


class Resources:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.memos = daemon.memos

    def list(self) -> list[dict[str, Any]]:
        cubes = self._daemon_call(lambda c: c.cube_list(), uri=None)
        return [{"uri": cube_uri(cube.name), "name": cube.name, "title": f"cube {cube.name}",
                 "description": _description(cube), "mimeType": MIME_TYPE} for cube in cubes]

    def templates(self) -> list[dict[str, Any]]:
        return [{"uriTemplate": URI_PREFIX + "{name}", "name": "cube",
                 "title": "a memory cube",
                 "description": "a cube's description and snapshots, by its name",
                 "mimeType": MIME_TYPE}]

    def read(self, uri: str) -> list[dict[str, Any]]:
        name = cube_name(uri)
        cube, snapshots = self._daemon_call(
            lambda c: (c.cube_show(name), c.snapshot_list(name)), uri=uri)
        body = {"cube": cube_view(cube), "snapshots": [snapshot_view(s) for s in snapshots]}
        return [{"uri": uri, "mimeType": MIME_TYPE,
                 "text": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}]

    def _daemon_call(self, fn: Any, uri: str | None) -> Any:
        # Resources have no error result of their own as tools do: memosd's
        # refusals are JSON-RPC errors, "not found" with MCP's own code.
        try:
            return self.daemon.call(fn, idempotent=True)  # reads only
        except self.memos.NotFound as e:
            raise RpcError(RESOURCE_NOT_FOUND, f"Resource not found: {daemon_error_text(e)}",
                           {"uri": uri}) from None
        except self.memos.BadRequest as e:  # a name memosd cannot take
            raise RpcError(INVALID_PARAMS, daemon_error_text(e), {"uri": uri}) from None
        except self.memos.MemosError as e:
            raise RpcError(INTERNAL_ERROR, daemon_error_text(e)) from None
