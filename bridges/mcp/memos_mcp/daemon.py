"""The connection to memosd, made when a call first needs it and made again
after it was lost.

An MCP host starts its servers when it starts, which may be before memosd
is up, and keeps them for days, across restarts of memosd: connecting at
start-up only would leave a server that fails every call. So the server
starts without memosd, and each call that finds no connection makes one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

log = logging.getLogger("memos-mcp")

T = TypeVar("T")


class Daemon:
    """`memos`: the memos package (or a stand-in with the same names: the
    tests'). `socket`: memosd's socket; None takes $MEMOS_SOCKET, else
    memosd's default, as the package does."""

    def __init__(self, memos: ModuleType | Any, socket: str | None) -> None:
        self.memos = memos
        self.socket = socket
        self._client: Any = None

    def call(self, fn: Callable[[Any], T], *, idempotent: bool = False) -> T:
        """fn(client), on a connection made now if there is none. Raises what
        memos raises. A lost connection is dropped, so that the next call
        reconnects; an idempotent call (a read) is retried once on a new
        one at once, so that the first read after memosd restarted does
        not fail. A write is not: it may have been done."""
        try:
            return self._call(fn)
        except (self.memos.ConnectionLost, self.memos.ProtocolError):
            if not idempotent:
                raise
        return self._call(fn)

    def _call(self, fn: Callable[[Any], T]) -> T:
        if self._client is None:
            self._client = self.memos.Client.connect(self.socket)
            log.info("connected to memosd%s", f" at {self.socket}" if self.socket else "")
        try:
            return fn(self._client)
        except (self.memos.ConnectionLost, self.memos.ProtocolError) as e:
            log.warning("lost memosd (%s); the next call reconnects", e)
            self.close()
            raise

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                client.close()
            except Exception as e:  # closing a broken connection may fail too
                log.debug("closing the connection: %s", e)
