"""A TCP relay a test can cut and restore (the service behind it going away and coming back),
or freeze and thaw (a service that hangs: connections open, nothing answered)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from tests.support.servers import free_port


class TcpRelay:
    """Listens on a port of its own and pipes every connection to `target`. `stop()` drops
    every connection and closes the port; `start()` opens it again on the same port.
    `freeze()` stops passing bytes (and connecting) without closing anything; `thaw()` lets
    them through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()

    def start(self) -> TcpRelay:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)

    def freeze(self) -> None:
        self._on_loop(self.flowing.clear)

    def thaw(self) -> None:
        self._on_loop(self.flowing.set)

    def _on_loop(self, change: Callable[[], None]) -> None:
        """Run `change` on the relay's loop, and return once it has run."""
        async def run() -> None:
            change()
        asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port,
                                                 reuse_address=True)

    async def _stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()
        self.server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await self.flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
