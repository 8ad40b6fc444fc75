"""The usage writer: a bounded queue, drained in batches by one background task.

Requests never wait for the database. A failed insert (database unreachable) sends its
batch to the spool; while the spool holds rows, new batches join it, so rows reach the
database in the order they were made once it returns. A full queue spools instead of
dropping. `close()` drains everything before shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.usage.spool import Spool

log = logging.getLogger("gateway.usage")

Insert = Callable[[list[dict[str, Any]]], Awaitable[None]]


class DatabaseUnavailable(Exception):
    """The insert could not reach the database; the rows are fine and will be retried."""


class UsageWriter:
    def __init__(self, insert: Insert, spool: Spool, *, queue_size: int = 10_000,
                 batch_size: int = 500, interval_s: float = 1.0) -> None:
        self.insert = insert
        self.spool = spool
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self.written = 0
        self.failures = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    def submit(self, row: dict[str, Any]) -> None:
        """Queue a row; never blocks. A full queue sends the row to the spool."""
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            self.spool.append([row])

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    async def close(self) -> None:
        """Write every queued row (or spool it) and stop."""
        self._closing = True
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            try:
                await self._write(batch)
            except Exception:  # the loop must survive anything; the rows are safe in the spool
                log.exception("usage writer: unexpected failure")
            if self._closing and self.queue.empty():
                return

    async def _next_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        if self.queue.empty() and not self._closing:
            with contextlib.suppress(TimeoutError):
                batch.append(await asyncio.wait_for(self.queue.get(), self.interval_s))
        while len(batch) < self.batch_size and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        if self.spool.pending() and not await self._replay():
            self.spool.append(batch)
            return
        if not batch:
            return
        try:
            await self._insert(batch)
        except DatabaseUnavailable as exc:
            self._failed(exc)
            self.spool.append(batch)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert a batch; rows the database refuses (not an outage) are set aside one by one."""
        try:
            await self.insert(rows)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            log.error("usage writer: batch refused (%s); retrying row by row",
                      type(exc).__name__)
            for row in rows:
                try:
                    await self.insert([row])
                except DatabaseUnavailable:
                    raise
                except Exception:
                    self.spool.reject([row])
                    log.error("usage writer: row %s refused; kept in the spool directory",
                              row.get("id"))
                    continue
                self.written += 1
            return
        self.written += len(rows)

    async def _replay(self) -> bool:
        """Move spooled rows into the database; False when it is still unreachable."""
        for path in self.spool.claim():
            rows = list(self.spool.read(path))
            for start in range(0, len(rows), self.batch_size):
                try:
                    await self._insert(rows[start:start + self.batch_size])
                except DatabaseUnavailable as exc:
                    self._failed(exc)
                    return False
            path.unlink()
            log.info("usage writer: replayed %d spooled rows", len(rows))
        return True

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        # The exception's type only: driver messages can echo parameters.
        log.warning("usage writer: database write failed (%s); rows spooled",
                    type(exc).__name__)
