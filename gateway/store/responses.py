"""Stored OpenAI Responses: what `store: true` keeps, what retrieve, delete and input_items
read, and how a `previous_response_id` becomes the history of the next turn.

Each response is one `responses` row (gateway/db/models.py), written with the id the client
saw: before a JSON answer is sent, and before a stream's `response.completed` event goes out
(gateway/pipeline/stored_responses.py). A write waits at most WRITE_WAIT_S: a slow or broken
database delays no answer longer than that and never fails one; the write goes on (and is
retried) in the background, and this process can chain from the response meanwhile.

A chain is walked by parent pointer (`previous_response_id`), never by session, so branching
from an older response replays only its own ancestors. Every response of a conversation
shares `root_id`, so a chain whose links are not cached loads in one indexed query; the links
(owner, parent, the turn as chat messages) are cached in process, being immutable once
written. A deletion reaches other replicas' caches within CACHE_TTL_S.

Responses belong to who made them: the gateway API key, or for anonymous calls the provider
credential (a hash of it); anyone else gets "not found". Rows older than the retention are
never served and are purged at most once an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.exc import DBAPIError

from gateway.db.engine import Database
from gateway.db.models import ResponseRow

log = logging.getLogger("gateway.responses")

WRITE_WAIT_S = 2.0  # the longest an answer waits for its row (then it is written behind)
_WRITE_RETRIES_S = (0.5, 2.0, 8.0)  # pauses between the attempts of a failed write
CACHE_TTL_S = 60.0
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 64 * 1024 * 1024
_PURGE_EVERY_S = 3600.0
_TABLE: Table = ResponseRow.__table__  # type: ignore[assignment]
_LINK_COLUMNS = (_TABLE.c.id, _TABLE.c.owner, _TABLE.c.previous_response_id, _TABLE.c.root_id,
                 _TABLE.c.depth, _TABLE.c.created_at, _TABLE.c.messages)


def owner_of(api_key_id: str | None, provider_key: str | None) -> str:
    """Who a response belongs to: a gateway API key, or an anonymous caller's credential."""
    if api_key_id is not None:
        return f"key:{api_key_id}"
    return "anon:" + hashlib.sha256((provider_key or "").encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    id: str
    owner: str
    previous_response_id: str | None
    root_id: str
    depth: int
    created_at: datetime
    model: str
    status: str
    response: dict[str, Any]  # the Response object, as the client got it
    input_items: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # this turn's input and output as chat messages


@dataclass(frozen=True, slots=True)
class Chain:
    """The conversation a new turn continues: its history and its place in it."""

    messages: list[dict[str, Any]]  # every ancestor's turn, oldest first
    root_id: str
    depth: int  # the previous response's


@dataclass(frozen=True, slots=True)
class _Link:
    owner: str
    previous: str | None
    root_id: str
    depth: int
    created_at: datetime
    messages: Sequence[dict[str, Any]]
    size: int  # bytes of the messages as JSON, for the cache's bound


class ResponseStore:
    def __init__(self, db: Database, retention_days: float) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days) if retention_days > 0 else None
        self._links: OrderedDict[str, tuple[float, _Link]] = OrderedDict()
        self._bytes = 0
        self._writes: set[asyncio.Task[None]] = set()
        self._purge: asyncio.Task[None] | None = None
        self._last_purge = time.monotonic()

    # --- chains -------------------------------------------------------------------------

    async def chain(self, response_id: str, owner: str) -> Chain | None:
        """The history `response_id` ends; None when it is unknown, expired or not owner's.
        An ancestor deleted or purged ends the history there."""
        head = self._cached(response_id) or await self._load_link(response_id)
        if head is None or head.owner != owner:
            return None
        links = [head]
        loaded: dict[str, _Link] | None = None
        while (parent_id := links[-1].previous) is not None:
            parent = self._cached(parent_id)
            if parent is None:
                if loaded is None:
                    loaded = await self._load_conversation(head.root_id, owner, head.depth)
                parent = loaded.get(parent_id)
            if parent is None or parent.owner != owner:
                break
            links.append(parent)
        messages = [message for link in reversed(links) for message in link.messages]
        return Chain(messages, head.root_id, head.depth)

    def _cached(self, response_id: str) -> _Link | None:
        entry = self._links.get(response_id)
        if entry is None:
            return None
        if entry[0] < time.monotonic() or self._expired(entry[1].created_at):
            self._forget(response_id)
            return None
        self._links.move_to_end(response_id)
        return entry[1]

    def _remember(self, response_id: str, link: _Link) -> None:
        self._forget(response_id)
        if link.size > _CACHE_BYTES // 16:
            return  # one huge conversation turn must not empty the cache
        self._links[response_id] = (time.monotonic() + CACHE_TTL_S, link)
        self._bytes += link.size
        while len(self._links) > _CACHE_ENTRIES or self._bytes > _CACHE_BYTES:
            _, (_, oldest) = self._links.popitem(last=False)
            self._bytes -= oldest.size

    def _forget(self, response_id: str) -> None:
        entry = self._links.pop(response_id, None)
        if entry is not None:
            self._bytes -= entry[1].size

    async def _load_link(self, response_id: str) -> _Link | None:
        query = select(*_LINK_COLUMNS).where(_TABLE.c.id == response_id)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None or self._expired(row.created_at):
            return None
        link = _link(row)
        self._remember(response_id, link)
        return link

    async def _load_conversation(self, root_id: str, owner: str, below: int) -> dict[str, _Link]:
        query = select(*_LINK_COLUMNS).where(_TABLE.c.root_id == root_id,
                                             _TABLE.c.owner == owner, _TABLE.c.depth < below)
        async with self.db.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        links = {row.id: _link(row) for row in rows if not self._expired(row.created_at)}
        for response_id, link in links.items():
            self._remember(response_id, link)
        return links

    def _expired(self, created_at: datetime) -> bool:
        return self.retention is not None and created_at < datetime.now(UTC) - self.retention

    # --- writes -------------------------------------------------------------------------

    async def save(self, record: ResponseRecord) -> None:
        """Write `record`, waiting at most WRITE_WAIT_S; never raises. Chaining from it works
        in this process at once, whatever the database does."""
        messages = record.messages
        self._remember(record.id, _Link(record.owner, record.previous_response_id,
                                        record.root_id, record.depth, record.created_at,
                                        messages, len(orjson.dumps(messages))))
        task = asyncio.get_running_loop().create_task(self._write(record))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        with contextlib.suppress(TimeoutError):
            # Shielded: a client that leaves, or a wait that runs out, does not stop the write.
            await asyncio.wait_for(asyncio.shield(task), WRITE_WAIT_S)
        self._maybe_purge()

    async def _write(self, record: ResponseRecord) -> None:
        values = {
            "id": record.id, "owner": record.owner,
            "previous_response_id": record.previous_response_id, "root_id": record.root_id,
            "depth": record.depth, "created_at": record.created_at, "model": record.model[:256],
            "status": record.status, "response": record.response,
            "input_items": record.input_items, "messages": record.messages,
        }
        for attempt, pause in enumerate((0.0, *_WRITE_RETRIES_S)):
            if pause:
                await asyncio.sleep(pause)
            try:
                async with self.db.engine.begin() as connection:
                    await connection.execute(insert(_TABLE).values(**values))
                return
            except (DBAPIError, OSError) as exc:
                log.warning("storing response %s failed (attempt %d): %s", record.id,
                            attempt + 1, type(exc).__name__)
        log.error("response %s was answered but not stored: the database refused it",
                  record.id)

    # --- reads for retrieve, delete and input_items ---------------------------------------

    async def get(self, response_id: str, owner: str) -> ResponseRecord | None:
        query = select(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.owner == owner)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None or self._expired(row.created_at):
            return None
        return ResponseRecord(
            id=row.id, owner=row.owner, previous_response_id=row.previous_response_id,
            root_id=row.root_id, depth=row.depth, created_at=row.created_at, model=row.model,
            status=row.status, response=row.response, input_items=row.input_items,
            messages=row.messages)

    async def delete(self, response_id: str, owner: str) -> bool:
        query = delete(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.owner == owner)
        async with self.db.engine.begin() as connection:
            deleted = (await connection.execute(query)).rowcount
        if deleted:
            self._forget(response_id)
        return bool(deleted)

    # --- retention ----------------------------------------------------------------------

    def _maybe_purge(self) -> None:
        now = time.monotonic()
        if self.retention is None or self._purge is not None \
                or now - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now
        self._purge = asyncio.get_running_loop().create_task(self._purge_once())

    async def _purge_once(self) -> None:
        try:
            await self.purge()
        except (DBAPIError, OSError) as exc:
            log.warning("purging expired responses failed: %s", type(exc).__name__)
        finally:
            self._purge = None

    async def purge(self) -> int:
        """Delete the rows older than the retention; how many went."""
        if self.retention is None:
            return 0
        cutoff = datetime.now(UTC) - self.retention
        async with self.db.engine.begin() as connection:
            result = await connection.execute(delete(_TABLE).where(_TABLE.c.created_at < cutoff))
        return result.rowcount

    async def close(self) -> None:
        """Let the writes in flight finish (they are answers already given), bounded."""
        pending = [*self._writes, *([self._purge] if self._purge else [])]
        if pending:
            await asyncio.wait(pending, timeout=WRITE_WAIT_S * 5)


def _link(row: Any) -> _Link:
    messages = row.messages
    return _Link(row.owner, row.previous_response_id, row.root_id, row.depth, row.created_at,
                 messages, len(orjson.dumps(messages)))
