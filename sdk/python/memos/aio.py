"""AsyncClient: Client's calls as coroutines, for asyncio.

Each call is sent at once on the calling thread (so calls made together
pipeline on the one connection, and memosd answers them in any order) and its
reply is awaited in the loop's default executor: the event loop never blocks.
The streamed calls (export_cube, import_cube, param_add, param_export) run
whole in the executor.
"""

from __future__ import annotations

import asyncio
import functools

from .client import Client


class AsyncClient(Client):
    """Client whose calls return awaitables:

        async with await AsyncClient.open() as c:
            items = await asyncio.gather(*(c.add("notes", t) for t in texts))
    """

    @classmethod
    async def open(cls, socket: str | None = None, **options) -> "AsyncClient":
        """Connects (in the executor: connecting may wait on the socket)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(cls.connect, socket, **options))

    def _run(self, name: str, args: tuple, keep: object = None):
        pending = self._send(name, args, keep)
        return asyncio.get_running_loop().run_in_executor(None, pending.wait)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def _blocking(self, method, *args, **kwargs):
        return asyncio.get_running_loop().run_in_executor(
            None, functools.partial(method, self, *args, **kwargs))

    def add_batch(self, cube, items):
        # Client.add_batch sends through self._send and waits itself: run it
        # whole in the executor, with Client's blocking _run.
        return self._blocking(Client.add_batch, cube, items)

    def import_cube(self, chunks, name=None):
        return self._blocking(Client.import_cube, chunks, name)

    def param_add(self, *args, **kwargs):
        return self._blocking(Client.param_add, *args, **kwargs)

    def param_export(self, *args, **kwargs):
        return self._blocking(Client.param_export, *args, **kwargs)

    async def export_cube(self, cube: str) -> bytes:
        """The cube's whole archive (Client.export_cube streams it)."""
        return await self._blocking(lambda c: b"".join(Client.export_cube(c, cube)))
