"""The usage writer: a bounded queue of encoded rows (codec.encode), drained in batches by one
background task.

Requests never wait for the database. A batch is written when `batch_size` rows are waiting
or `interval_s` after the last write, whichever comes first: under load that is one COPY of a
few hundred rows, not a round trip per request. A failed insert (database unreachable) sends its
batch to the spool; while the spool holds rows, new batches join it, so rows reach the
database in the order they were made once it returns. A full queue spools instead of
dropping. `close()` drains everything before shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

import orjson

from gateway.usage.spool import Spool

log = logging.getLogger("gateway.usage")

Insert = Callable[[list[bytes]], Awaitable[None]]


class DatabaseUnavailable(Exception):
    """The insert could not reach the database; the rows are fine and will be retried."""


class UsageWriter:
    def __init__(self, insert: Insert, spool: Spool, *, queue_size: int = 10_000,
                 batch_size: int = 500, interval_s: float = 1.0) -> None:
        self.insert = insert
        self.spool = spool
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.queue_size = queue_size
        self._rows: deque[bytes] = deque()
        self._batch_ready = asyncio.Event()
        self.written = 0
        self.failures = 0
        # Progress, for the journal: rows ever taken into the queue, and how many of those were
        # since written, spooled or set aside; told to `on_settled(settled, queued)`.
        self.queued = 0
        self.settled = 0
        self.on_settled: Callable[[int, int], None] | None = None
        # Told when a batch failed in a way that may have lost it (the spool unwritable too):
        # the journal then keeps what it holds for the next process to replay.
        self.on_lost: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    def submit(self, row: bytes) -> None:
        """Queue a row; never blocks. A full queue sends the row to the spool."""
        self.submit_many([row])

    def submit_many(self, rows: list[bytes]) -> None:
        """Queue rows; never blocks. What a full queue cannot take goes to the spool, in one
        write (one fsync)."""
        if self._closed:  # stopped (shutdown): the rows wait in the spool for the next start
            self.spool.append(rows)
            return
        room = max(self.queue_size - len(self._rows), 0)
        self._rows.extend(rows[:room])  # first: a failing spool must not cost these their place
        self.queued += min(room, len(rows))
        if len(self._rows) >= self.batch_size:
            self._batch_ready.set()
        if len(rows) > room:
            self.spool.append(rows[room:])

    @property
    def depth(self) -> int:
        return len(self._rows)

    async def close(self) -> None:
        """Write every queued row (or spool it) and stop. Rows submitted afterwards go to the
        spool, to be replayed by the next process."""
        self._closing = True
        self._batch_ready.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._closed = True
        if self._rows:  # submitted as the task ended, or it never ran
            self.spool.append(list(self._rows))
            self.settled += len(self._rows)
            self._rows.clear()

    async def _run(self) -> None:
        batch: list[bytes] = []  # first none: what an earlier process spooled goes in at once
        while True:
            try:
                await self._write(batch)
            except Exception:  # the loop must survive anything
                log.exception("usage writer: unexpected failure")
                if self.on_lost is not None:  # the batch may be neither written nor spooled
                    self.on_lost()
            self.settled += len(batch)
            if self.on_settled is not None:
                self.on_settled(self.settled, self.queued)
            if self._closing and not self._rows:
                return
            batch = await self._next_batch()

    async def _next_batch(self) -> list[bytes]:
        """Up to `batch_size` rows, once that many wait or `interval_s` has passed (an empty
        batch still lets `_write` replay the spool)."""
        if len(self._rows) < self.batch_size and not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_ready.wait(), self.interval_s)
        if not self._closing:
            self._batch_ready.clear()
        rows = self._rows
        return [rows.popleft() for _ in range(min(self.batch_size, len(rows)))]

    async def _write(self, batch: list[bytes]) -> None:
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

    async def _insert(self, rows: list[bytes]) -> None:
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
                              _row_id(row))
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


def _row_id(row: bytes) -> str | None:
    with contextlib.suppress(ValueError, IndexError):
        return str(orjson.loads(row)[0])  # the id is the first column (for the log)
    return None
