"""The MCP methods this server answers (revision 2025-06-18), as the
method tables server.Server dispatches: the lifecycle (initialize, ping),
tools and resources. Parameters are checked here; a malformed one is
INVALID_PARAMS."""

from __future__ import annotations

import logging
from typing import Any

from . import SERVER_NAME, __version__
from .daemon import Daemon
from .resources import Resources
from .server import INVALID_PARAMS, Handler, Notification, RpcError
from .tools import Tools

log = logging.getLogger("memos-mcp")

PROTOCOL_VERSION = "2025-06-18"
# The revisions this server speaks. A client asking for another one is
# answered with ours, and decides whether it can go on (MCP, "Lifecycle",
# version negotiation).
SUPPORTED_VERSIONS = (PROTOCOL_VERSION,)

INSTRUCTIONS = (
    "Long-term memory kept by memosd. Memories live in cubes (list_cubes, create_cube): keep "
    "one cube per person, project or topic. Store short self-contained facts with add_memory "
    "and find them with search_memories before answering. Ids are 13-character strings; "
    "update_memory keeps every earlier version (memory_history)."
)


class Session:
    def __init__(self, daemon: Daemon) -> None:
        self.tools = Tools(daemon)
        self.resources = Resources(daemon)

    def methods(self) -> dict[str, Handler]:
        return {
            "initialize": self.initialize,
            "ping": lambda params: {},
            "tools/list": self.tools_list,
            "tools/call": self.tools_call,
            "resources/list": self.resources_list,
            "resources/read": self.resources_read,
            "resources/templates/list": self.resource_templates_list,
        }

    def notifications(self) -> dict[str, Notification]:
        return {
            "notifications/initialized": self._initialized,
            # Requests are answered one at a time, each before the next is
            # read: by the time a cancellation is read, its request is done.
            "notifications/cancelled": lambda params: None,
        }

    # ---- lifecycle ------------------------------------------------------------------

    def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise RpcError(INVALID_PARAMS, "Invalid params: protocolVersion must be a string")
        for name in ("capabilities", "clientInfo"):
            if name in params and not isinstance(params[name], dict):
                raise RpcError(INVALID_PARAMS, f"Invalid params: {name} must be an object")
        client = params.get("clientInfo") or {}
        version = requested if requested in SUPPORTED_VERSIONS else PROTOCOL_VERSION
        log.info("initialize from %s %s, protocol %s (answered %s)",
                 client.get("name", "?"), client.get("version", "?"),
                 requested, version)
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False},
                             "resources": {"subscribe": False, "listChanged": False}},
            "serverInfo": {"name": SERVER_NAME, "title": "memos", "version": __version__},
            "instructions": INSTRUCTIONS,
        }

    def _initialized(self, params: dict[str, Any]) -> None:
        # Requests sent before it are served all the same: refusing them
        # would help no client.
        log.info("the client is initialized")

    # ---- tools --------------------------------------------------------------------

    def tools_list(self, params: dict[str, Any]) -> dict[str, Any]:
        _no_cursor(params)
        return {"tools": self.tools.list()}

    def tools_call(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, "Invalid params: name must be a string")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "Invalid params: arguments must be an object")
        return self.tools.call(name, arguments)

    # ---- resources ----------------------------------------------------------------

    def resources_list(self, params: dict[str, Any]) -> dict[str, Any]:
        _no_cursor(params)
        return {"resources": self.resources.list()}

    def resource_templates_list(self, params: dict[str, Any]) -> dict[str, Any]:
        _no_cursor(params)
        return {"resourceTemplates": self.resources.templates()}

    def resources_read(self, params: dict[str, Any]) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, "Invalid params: uri must be a string")
        return {"contents": self.resources.read(uri)}


def _no_cursor(params: dict[str, Any]) -> None:
    # Every list is answered whole, with no nextCursor: a client can hold
    # no cursor of ours, so any it sends is one we never gave (MCP,
    # "Pagination": an invalid cursor is INVALID_PARAMS).
    if params.get("cursor") is not None:
        raise RpcError(INVALID_PARAMS, "Invalid params: unknown cursor (lists are not paged)")
