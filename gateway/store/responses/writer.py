"""The store's writer: saved responses wait here (and are served from here) until an insert
commits them, and their answers wait (`written`) for that commit before they go out.

Group commit: the writer inserts everything queued when it wakes in one transaction, and what
is saved while that insert runs goes in the next one. Nothing waits for a batch to fill, so a
lone request pays one insert; under load the batches grow by themselves (one commit for every
answer of those milliseconds: a database write costs far more than a translated answer).

A batch the database refuses for one of its rows (DataError: a value that does not fit, or an
IntegrityError: a row already there) is inserted again one row at a time, so that only the
refused row is lost (logged, by id and error class); that is no outage, the store stays
healthy. A failed write (the database out, or silent past bounds.DB_TIMEOUT_S) is retried in
the background; while the database fails writes the store is degraded: answers stop waiting
(they go out, and the rows stay pending and served from this process until a retry commits
them, or are given up on, logged). An answer never waits longer than WRITE_WAIT_S. Past
_MAX_PENDING rows the oldest are dropped, logged.

`lock` is held around one insert statement at a time, never across a pause between retries:
a DELETE waits at most one bounded statement for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from gateway.store.responses.records import Saved
from gateway.store.responses.table import ResponseTable

log = logging.getLogger("gateway.responses")

_BATCH = 500  # rows per insert at most
WRITE_WAIT_S = 1.0  # the longest an answer waits for its row (a database hung, not down)
_MAX_PENDING = 10_000  # responses held in memory while their writes wait (the database down)
WRITE_RETRIES_S = (0.5, 2.0, 8.0)  # pauses between the attempts of a failed write
CLOSE_WAIT_S = 10.0  # the longest shutdown waits for the writes still queued


class BatchWriter:
    def __init__(self, table: ResponseTable, after_round: Callable[[], None],
                 lost: Callable[[str], None]) -> None:
        self.table = table
        self._after_round = after_round  # run after each round of inserts (the purge)
        self._lost = lost  # told the id of each response given up on (the store forgets it)
        # Saved, not yet committed: served from here meanwhile. Ordered oldest first.
        self.pending: OrderedDict[str, Saved] = OrderedDict()
        self._queue: deque[Saved] = deque()
        # Resolved when the rows queued now are committed (True) or failed once (False).
        self._next: asyncio.Future[bool] | None = None
        self._round_of: dict[str, asyncio.Future[bool]] = {}
        self.healthy = True  # False from a failed write until one succeeds: nothing waits
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._closing = False
        self._settled = asyncio.Event()  # set while nothing is pending
        self._settled.set()
        self.lock = asyncio.Lock()  # held by a batch insert, and by a DELETE

    def submit(self, saved: Saved) -> None:
        """Queue `saved` for the next insert; never waits."""
        self.pending[saved.id] = saved
        if len(self.pending) > _MAX_PENDING:
            lost, _ = self.pending.popitem(last=False)
            self._round_of.pop(lost, None)
            log.error("response %s was answered but not stored: %d writes are waiting",
                      lost, _MAX_PENDING)
        self._queue.append(saved)
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            loop.call_later(WRITE_WAIT_S, _release_late, self._next)
        self._round_of[saved.id] = self._next
        self._settled.clear()
        self._wake.set()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._write_loop(), name="responses-writer")

    async def written(self, response_id: str) -> bool:
        """Wait until `response_id`'s row is committed: True then, or when it is not waiting
        to be written; False when the write failed, the store is degraded, or WRITE_WAIT_S
        passed (the write goes on)."""
        round_ = self._round_of.get(response_id)
        if round_ is None:
            return response_id not in self.pending
        if not self.healthy:
            return False
        # Shielded: one waiter cancelled (its client left) must not cancel the others' round.
        return await asyncio.shield(round_)

    def discard(self, response_id: str) -> None:
        """Skip a write still queued (its response was deleted)."""
        self.pending.pop(response_id, None)
        if not self.pending:
            self._settled.set()

    async def _write_loop(self) -> None:
        while not (self._closing and not self._queue):
            await self._wake.wait()
            self._wake.clear()
            # What is saved from now on waits for the next round.
            round_, self._next = self._next, None
            taken = list(self._queue)
            self._queue.clear()
            committed = False
            try:
                committed = await self._write(taken, round_)
                self._after_round()
            except Exception:  # a bug must not stop the writer, nor hold answers
                log.exception("%d responses were answered but not stored", len(taken))
                for saved in taken:
                    self.pending.pop(saved.id, None)
            finally:
                for saved in taken:
                    self._round_of.pop(saved.id, None)
                if round_ is not None and not round_.done():
                    round_.set_result(committed)
            if not self.pending:
                self._settled.set()

    async def _write(self, taken: list[Saved], round_: asyncio.Future[bool] | None) -> bool:
        """Insert one round's rows, _BATCH at a time; True when all committed at once."""
        committed = True
        for start in range(0, len(taken), _BATCH):
            batch = taken[start:start + _BATCH]
            committed &= await self._store(batch, round_)
            for saved in batch:
                self.pending.pop(saved.id, None)
        return committed

    async def _store(self, batch: list[Saved], round_: asyncio.Future[bool] | None) -> bool:
        """Insert `batch`, retrying what an outage left; True when it all went in at the
        first attempt. The round's answers are released (False) as soon as an attempt fails:
        they do not wait out the retries, which pause without the lock."""
        left = batch
        for attempt, pause in enumerate((0.0, *WRITE_RETRIES_S)):
            if pause:
                await asyncio.sleep(pause)
            left = await self._attempt(left)
            if not left:
                self.healthy = True
                return attempt == 0
            self.healthy = False
            if round_ is not None and not round_.done():
                round_.set_result(False)
        log.error("%d responses were answered but not stored: the database refused them",
                  len(left))
        for saved in left:
            self._lost(saved.id)
        return False

    async def _attempt(self, rows: list[Saved]) -> list[Saved]:
        """One attempt at `rows`, in one statement, else (a row refused) one row at a time;
        the rows an outage left, to retry."""
        try:
            async with self.lock:  # a DELETE waits for this statement, or this for it
                rows = [saved for saved in rows if saved.id in self.pending]  # (not deleted)
                if rows:
                    await self.table.insert(rows)
            return []
        except (IntegrityError, DataError):
            pass  # a row there already (a retry of a write that did commit), or refused
        except (DBAPIError, OSError) as exc:
            log.warning("storing %d responses failed: %s", len(rows), type(exc).__name__)
            return rows
        for at, saved in enumerate(rows):
            try:
                async with self.lock:
                    if saved.id in self.pending:
                        await self.table.insert([saved])
            except IntegrityError:
                pass  # there already
            except DataError as exc:
                self._refused(saved, exc)
            except (DBAPIError, OSError) as exc:
                log.warning("storing response %s failed: %s", saved.id, type(exc).__name__)
                return rows[at:]
        return []

    def _refused(self, saved: Saved, exc: DataError) -> None:
        """A row the database will never take: lost alone, logged (its id, and the error's
        class and SQLSTATE: no value of the row)."""
        cause = exc.orig
        state = getattr(cause, "sqlstate", None)
        log.error("response %s was answered but not stored: the database refused the row "
                  "(%s%s)", saved.id, type(cause).__name__, f", SQLSTATE {state}" if state else "")
        self._lost(saved.id)

    async def flush(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Wait until every response saved so far is committed (or given up on)."""
        await asyncio.wait_for(self._settled.wait(), timeout)

    async def close(self) -> None:
        """Commit what is queued (answers already given), waiting at most CLOSE_WAIT_S."""
        self._closing = True
        self._wake.set()
        if self.task is not None:
            done, _ = await asyncio.wait([self.task], timeout=CLOSE_WAIT_S)
            if not done:
                self.task.cancel()
                log.error("%d responses were answered but not stored before shutdown",
                          len(self.pending))


def _release_late(round_: asyncio.Future[bool]) -> None:
    """A round still uncommitted after WRITE_WAIT_S: its answers go out (the write goes on)."""
    if not round_.done():
        round_.set_result(False)
        log.warning("answers go out before their responses are committed: the database took "
                    "over %.1f s", WRITE_WAIT_S)
