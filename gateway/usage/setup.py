"""The usage log's life: opened in the lifespan after the database, closed first at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.contracts.outcome import Outcome, Tokens
from gateway.db.engine import Database
from gateway.settings import Settings
from gateway.usage import codec, journal
from gateway.usage.pricing import PriceBook, load_table
from gateway.usage.row import price_request, row_values
from gateway.usage.spool import Spool
from gateway.usage.store import UsageStore
from gateway.usage.writer import UsageWriter

log = logging.getLogger("gateway.usage")
_PARTITION_CHECK_S = 6 * 3600
BUILD_DELAY_S = 0.02  # a row waits at most this long to be built
BUILD_AT = 8  # or until this many wait


class UsageLog:
    """Prices each finished request at once and builds its row for the writer a little later,
    with the others that finished meanwhile; never blocks. With the crash-safe journal on, the
    row is built and journaled at once instead, and only its hand-over to the writer waits.

    The price is taken at once because the recorders after this one (metrics, limits) read it.
    The row waits until BUILD_AT rows wait, then they are all built in the finish of the
    request that made them eight, just after its response went out; or BUILD_DELAY_S after the
    first, when requests are few. In a group the row's code runs warm in the CPU's caches:
    built one at a time, between requests that push it out of them, a row cost the busy
    gateway 16.6 µs at concurrency 16; in groups of eight 6.8 (timed inside it). What logging
    adds to the gateway's CPU per request, at concurrency 1 / 16: 15 / 26 µs in groups, 31 / 41
    one row at a time; with the journal on, grouping the hand-over alone, p99 on / off at
    concurrency 1 read 0.97x against 1.22x (bench/README.md, "Contained experiments"). Groups stay
    small because a group's build stalls whatever request is in flight: with up to 64 a group
    on a 20 ms timer, p99 at concurrency 1 read 1.15x that without logging (bench.usage_overhead).
    """

    def __init__(self, settings: Settings, store: UsageStore) -> None:
        self.store = store
        self.prices = PriceBook(load_table(), settings.model_prices)
        self.log_bodies = settings.log_bodies
        self.spool = Spool(settings.spool_dir)
        self.writer = UsageWriter(store.insert, self.spool, queue_size=settings.usage_queue_size,
                                  batch_size=settings.usage_batch_size,
                                  interval_s=settings.usage_flush_interval_s)
        self.journal = journal.for_settings(settings)  # None when off
        if self.journal is not None:
            self.writer.on_settled = self._settled
            self.writer.on_lost = self.journal.hold
        self._partitions: asyncio.Task[None] | None = None
        self._finished: list[tuple[Outcome, Tokens | None]] = []  # rows still to build
        self._built: list[bytes] = []  # rows built and journaled, for the writer's next group
        self._build_timer: asyncio.TimerHandle | None = None
        self._closing = False

    def record(self, outcome: Outcome) -> None:
        try:
            tokens = price_request(outcome, self.prices)
        except Exception:  # a bug here must not lose the response; log it loudly
            log.exception("usage: could not price request %s", outcome.request.request_id)
            tokens = None
        if self.journal is not None:
            # Crash-safe: the row is built and on disk now, not up to BUILD_DELAY_S later (a
            # SIGKILL in that window would lose the rows of requests already answered).
            row = self._row(outcome, tokens)
            if row is not None:
                self.journal.append([row], self.writer.queued + len(self._built))
                self._built.append(row)
        else:
            self._finished.append((outcome, tokens))
        if len(self._finished) + len(self._built) >= BUILD_AT or self._closing:
            self.build_rows()
        elif self._build_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # recorded outside the event loop: nothing to wait for
                self.build_rows()
            else:
                self._build_timer = loop.call_later(BUILD_DELAY_S, self.build_rows)

    def _settled(self, settled: int, queued: int) -> None:
        # Rows journaled but still waiting in `_built` count as given: without them the
        # journal would empty its open segment once the writer caught up, erasing rows of
        # answered requests that a SIGKILL in the next BUILD_DELAY_S would then lose.
        if self.journal is not None:  # (bench.journal_switch turns it off while running)
            self.journal.release(settled, queued + len(self._built))

    def _row(self, outcome: Outcome, tokens: Tokens | None) -> bytes | None:
        try:
            return codec.encode_values(row_values(outcome, tokens, self.log_bodies))
        except Exception:  # one bad row must not cost the others theirs
            log.exception("usage: could not build the row for request %s",
                          outcome.request.request_id)
            return None

    def build_rows(self) -> None:
        """Build the rows of the requests recorded so far and queue them for the writer."""
        if self._build_timer is not None:
            self._build_timer.cancel()
            self._build_timer = None
        finished, self._finished = self._finished, []
        rows, self._built = self._built, []
        rows.extend(row for outcome, tokens in finished
                    if (row := self._row(outcome, tokens)) is not None)
        try:
            self.writer.submit_many(rows)
        except Exception:  # e.g. the spool unwritable (disk full) when it was needed
            log.exception("usage: of a group of %d rows, those the queue could not take "
                          "could not be spooled either", len(rows))
            if self.journal is not None:
                self.journal.hold()  # the next process replays them

    @property
    def depth(self) -> int:
        return self.writer.depth + len(self._finished) + len(self._built)

    @property
    def spooled_rows(self) -> int:
        return self.spool.pending_rows()

    async def start(self) -> None:
        await self._ensure_partitions()
        if self.journal is not None:  # what a killed predecessor held goes to the spool first
            self.journal.start(self.spool)
        self.writer.start()
        self._partitions = asyncio.create_task(self._keep_partitions(), name="usage-partitions")

    async def close(self) -> None:
        if self._partitions is not None:
            self._partitions.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._partitions
        # From now on a row is built as soon as its request is recorded: while the writer
        # drains, it is written; once the writer has stopped, spooled for the next start.
        self._closing = True
        self.build_rows()
        try:
            await self.writer.close()
            if self.journal is not None:
                self.journal.close(self.writer.settled, self.writer.queued)
        finally:
            await self.store.close()

    async def _ensure_partitions(self) -> None:
        try:
            await self.store.ensure_partitions()
        except Exception as exc:  # the database may be down: rows go to the default partition
            log.warning("usage: partitions not checked: %s", type(exc).__name__)

    async def _keep_partitions(self) -> None:
        while True:
            await asyncio.sleep(_PARTITION_CHECK_S)
            await self._ensure_partitions()


async def open_usage_log(settings: Settings, db: Database | None) -> UsageLog | None:
    """The running usage log; None without a database or with GATEWAY_USAGE_LOG off."""
    if db is None or not settings.usage_log:
        return None
    usage = UsageLog(settings, UsageStore(db))
    await usage.start()
    return usage
