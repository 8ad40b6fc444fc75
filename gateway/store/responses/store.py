"""`ResponseStore`: chains, retrieve and delete over the table, the link cache and the
writer, scoped to each response's owner and to the retention."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError

from gateway.db.engine import Database
from gateway.store.responses.links import LinkCache
from gateway.store.responses.records import Chain, Link, ResponseRecord, Saved, Unstorable
from gateway.store.responses.table import ResponseTable
from gateway.store.responses.writer import CLOSE_WAIT_S, BatchWriter

log = logging.getLogger("gateway.responses")

_PURGE_EVERY_S = 3600.0


class ResponseStore:
    def __init__(self, db: Database, retention_days: float) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days) if retention_days > 0 else None
        self.table = ResponseTable(db)
        self.links = LinkCache(self._expired)
        self.writer = BatchWriter(self.table, self._maybe_purge, self.links.forget)
        self._last_purge = float("-inf")  # the first batch's writer purges, then hourly
        self._purging: asyncio.Task[None] | None = None

    # --- chains -------------------------------------------------------------------------

    async def chain(self, response_id: str, owner: str) -> Chain | None:
        """The history `response_id` ends; None when it is unknown, expired or not owner's.
        An ancestor deleted or purged ends the history there."""
        head = self._known(response_id) or await self._load_link(response_id)
        if head is None or head.owner != owner:
            return None
        links = [head]
        loaded: dict[str, Link] | None = None
        while (parent_id := links[-1].previous) is not None:
            parent = self._known(parent_id)
            if parent is None:
                if loaded is None:
                    loaded = await self._load_conversation(head.root_id, owner, head.depth)
                parent = loaded.get(parent_id)
            if parent is None or parent.owner != owner:
                break
            links.append(parent)
        items = [item for link in reversed(links) for item in link.items()]
        return Chain(items, head.root_id, head.depth)

    def _known(self, response_id: str) -> Link | None:
        """A link this process holds: cached, or saved and not yet written."""
        link = self.links.get(response_id)
        if link is None and (saved := self.writer.pending.get(response_id)) is not None:
            link = saved.link()
        return link

    async def _load_link(self, response_id: str) -> Link | None:
        found = await self.table.link(response_id)
        if found is None or self._expired(found[0]):
            return None
        self.links.put(response_id, found[1])
        return found[1]

    async def _load_conversation(self, root_id: str, owner: str, below: int) -> dict[str, Link]:
        rows = await self.table.conversation(root_id, owner, below)
        links = {response_id: link for response_id, link in rows
                 if not self._expired(link.created_at)}
        for response_id, link in links.items():
            self.links.put(response_id, link)
        return links

    def _expired(self, created_at: datetime) -> bool:
        return self.retention is not None and created_at < datetime.now(UTC) - self.retention

    # --- writes -------------------------------------------------------------------------

    def save(self, record: ResponseRecord) -> None:
        """Take `record`: this process serves it at once; the writer commits it (`written`
        waits for that). Never waits, never raises. Ids are the gateway's own (a native
        answer's too: responses.py), so an id held here already is a bug's, and stays its
        first owner's. A record whose key does not fit its column (records.key) is not
        stored, logged."""
        if record.id in self.writer.pending or record.id in self.links:
            return
        try:
            saved = Saved.of(record)
        except Unstorable as exc:
            log.error("response %.64s was answered but not stored: %s", record.id, exc)
            return
        self.links.put(record.id, saved.link())
        self.writer.submit(saved)

    async def written(self, response_id: str) -> bool:
        """Wait for a saved response's row to commit, so that its answer goes out only once
        every replica can find it and a crash cannot lose it. False (at once, or after
        writer.WRITE_WAIT_S at most) when the database does not take it: the answer goes out
        anyway, and the row stays served from here while the writer retries."""
        return await self.writer.written(response_id)

    # --- reads for retrieve, delete and input_items ---------------------------------------

    async def get(self, response_id: str, owner: str) -> ResponseRecord | None:
        pending = self.writer.pending.get(response_id)
        if pending is not None:
            return pending.record() if pending.owner == owner else None
        record = await self._load_record(response_id)
        return record if record is not None and record.owner == owner else None

    async def _load_record(self, response_id: str) -> ResponseRecord | None:
        record = await self.table.record(response_id)
        return None if record is None or self._expired(record.created_at) else record

    async def delete(self, response_id: str, owner: str) -> bool:
        """Delete a response of `owner`'s; False when there is none."""
        if await self.get(response_id, owner) is None:
            return False
        self.writer.discard(response_id)  # a write still queued is skipped
        self.links.forget(response_id)
        # After the insert running now (it may hold this response), so the DELETE sticks;
        # no later insert takes it (each takes only what is still pending). The wait is one
        # statement's, itself bounded.
        async with self.writer.lock:
            pass
        await self.table.delete(response_id, owner)
        return True

    # --- retention and shutdown -----------------------------------------------------------

    def _maybe_purge(self) -> None:
        """Started by the writer, at most once every _PURGE_EVERY_S; in a task of its own, so
        that a long purge never holds answers waiting for their rows."""
        now = time.monotonic()
        if self.retention is None or now - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now
        self._purging = asyncio.get_running_loop().create_task(self._purge_logged())

    async def _purge_logged(self) -> None:
        try:
            await self.purge()
        except (DBAPIError, OSError) as exc:
            log.warning("purging expired responses failed: %s", type(exc).__name__)

    async def purge(self) -> int:
        """Delete the rows older than the retention; how many went."""
        if self.retention is None:
            return 0
        return await self.table.purge(datetime.now(UTC) - self.retention)

    async def flush(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Wait until every response saved so far is committed (or given up on), and a
        purge it started is done."""
        await self.writer.flush(timeout)
        if self._purging is not None:
            await asyncio.wait_for(asyncio.shield(self._purging), timeout)

    async def close(self) -> None:
        """Commit what is queued (answers already given), waiting at most CLOSE_WAIT_S."""
        await self.writer.close()
        if self._purging is not None and not self._purging.done():
            self._purging.cancel()  # the next start purges
            await asyncio.gather(self._purging, return_exceptions=True)
        await self.table.close()
