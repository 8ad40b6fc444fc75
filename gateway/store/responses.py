"""Stored OpenAI Responses: what `store: true` keeps, what retrieve, delete and input_items
read, and how a `previous_response_id` becomes the history of the next turn.

When a response is finished (its JSON made, or its stream's last event made, before either
is sent) it is handed to `save`, which never waits: from that moment this process serves it
(retrieve, input_items, chains) from memory, and a background writer commits it within
BATCH_WAIT_S, batched with the others of that moment (one transaction and one commit for all
of them: a database write costs far more than a translated answer). No answer waits for the
database; a database that is down costs no answer (its writes are retried, and meanwhile
served from memory). The price: the responses answered in the last BATCH_WAIT_S (plus one
commit) before the process is killed are lost; a clean shutdown writes them first.

Another replica may be asked for a response before its row is committed: ids carry the time
they were minted, and a lookup that finds nothing for an id minted in the last FRESH_S seconds
polls for it a little (about a second in all) before it answers "not found".

A chain is walked by parent pointer (`previous_response_id`), never by session, so branching
from an older response replays only its own ancestors. Every response of a conversation
shares `root_id`, so a chain whose links are not cached loads in one indexed query; the links
(owner, parent, the turn's input and output items) are cached in process, being immutable once
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
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, Table, Text, bindparam, cast, delete, event, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from gateway.db.engine import Database
from gateway.db.models import ResponseRow

log = logging.getLogger("gateway.responses")

T = TypeVar("T")

_BATCH = 500  # rows per insert at most
# How long the writer lets a batch gather after its first row: one commit (an fsync) and one
# round of database calls for every answer of those milliseconds, instead of one per answer.
BATCH_WAIT_S = 0.05
_MAX_PENDING = 10_000  # responses held in memory while their writes wait (the database down)
_WRITE_RETRIES_S = (0.5, 2.0, 8.0)  # pauses between the attempts of a failed write
CLOSE_WAIT_S = 10.0  # the longest shutdown waits for the writes still queued
FRESH_S = 10.0  # a missing id minted this recently may be another replica's, not yet written
_FRESH_POLLS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64)
CACHE_TTL_S = 60.0
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 64 * 1024 * 1024
_PURGE_EVERY_S = 3600.0
_TABLE: Table = ResponseRow.__table__  # type: ignore[assignment]
_JSON_COLUMNS = ("response", "input_items", "output_items")


class _JSONText(TypeDecorator[Any]):
    """A JSON column bound from text the store serialised itself (orjson: several times
    faster than the json module SQLAlchemy would use, on the event loop)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


_INSERT = insert(_TABLE).values(
    {name: bindparam(f"{name}_json", type_=_JSONText()) for name in _JSON_COLUMNS})
# The items as their JSON text: a link keeps them so (see _Link), no need to parse them.
_LINK_COLUMNS = (_TABLE.c.id, _TABLE.c.owner, _TABLE.c.previous_response_id, _TABLE.c.root_id,
                 _TABLE.c.depth, _TABLE.c.created_at,
                 cast(_TABLE.c.input_items, Text).label("input_json"),
                 cast(_TABLE.c.output_items, Text).label("output_json"))


def mint_response_id(now: float | None = None) -> str:
    """`resp_`, the minting time (12 hex digits of milliseconds) and 36 random hex digits."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"resp_{millis:012x}{secrets.randbits(144):036x}"


def _minted_at(response_id: str) -> float | None:
    """When a gateway id was minted (seconds), None for any other id."""
    digits = response_id[5:17]
    if not response_id.startswith("resp_") or len(response_id) != 53:
        return None
    try:
        return int(digits, 16) / 1000
    except ValueError:
        return None


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
    output_items: list[dict[str, Any]]  # the Response's output


@dataclass(frozen=True, slots=True)
class Chain:
    """The conversation a new turn continues: its history and its place in it."""

    items: list[dict[str, Any]]  # every ancestor's input then output items, oldest first
    root_id: str
    depth: int  # the previous response's


@dataclass(frozen=True, slots=True)
class _Link:
    """One response as a chain needs it. Its items are kept as JSON (bytes hold no references,
    so the garbage collector never walks them: held as dicts, thousands of cached turns made
    every full collection long, and frequent)."""

    owner: str
    previous: str | None
    root_id: str
    depth: int
    created_at: datetime
    input_json: bytes
    output_json: bytes

    @property
    def size(self) -> int:
        return len(self.input_json) + len(self.output_json)

    def items(self) -> list[Any]:
        return [*orjson.loads(self.input_json), *orjson.loads(self.output_json)]


@dataclass(frozen=True, slots=True)
class _Saved:
    """A response saved and not yet written: as the writer will insert it (JSON text)."""

    id: str
    owner: str
    previous_response_id: str | None
    root_id: str
    depth: int
    created_at: datetime
    model: str
    status: str
    response: str
    input_items: str
    output_items: str

    def link(self) -> _Link:
        return _Link(self.owner, self.previous_response_id, self.root_id, self.depth,
                     self.created_at, self.input_items.encode(), self.output_items.encode())

    def record(self) -> ResponseRecord:
        output = orjson.loads(self.output_items)
        return ResponseRecord(
            self.id, self.owner, self.previous_response_id, self.root_id, self.depth,
            self.created_at, self.model, self.status,
            _with_output(orjson.loads(self.response), output),
            orjson.loads(self.input_items), output)


def _without_output(response: dict[str, Any]) -> dict[str, Any]:
    """The Response as the `response` column keeps it: its output is the `output_items`
    column's (kept once, not twice)."""
    return {key: value for key, value in response.items() if key != "output"}


def _with_output(response: dict[str, Any], output: list[Any]) -> dict[str, Any]:
    return {**response, "output": output}


class ResponseStore:
    def __init__(self, db: Database, retention_days: float) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days) if retention_days > 0 else None
        self._links: OrderedDict[str, tuple[float, _Link]] = OrderedDict()
        self._bytes = 0
        # Saved, not yet committed: served from here meanwhile. Ordered oldest first.
        self._pending: OrderedDict[str, _Saved] = OrderedDict()
        self._queue: deque[_Saved] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._settled = asyncio.Event()  # set while nothing is pending
        self._settled.set()
        self._deleted: deque[str] = deque(maxlen=1024)  # here, lately: no need to wait for them
        self._writes = asyncio.Lock()  # held by a batch insert, and by a DELETE
        self._last_purge = float("-inf")  # the first batch's writer purges, then hourly
        self._write_engine: AsyncEngine | None = None

    # --- chains -------------------------------------------------------------------------

    async def chain(self, response_id: str, owner: str) -> Chain | None:
        """The history `response_id` ends; None when it is unknown, expired or not owner's.
        An ancestor deleted or purged ends the history there."""
        head = self._known(response_id) or await self._fresh(
            response_id, lambda: self._load_link(response_id))
        if head is None or head.owner != owner:
            return None
        links = [head]
        loaded: dict[str, _Link] | None = None
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

    def _known(self, response_id: str) -> _Link | None:
        """A link this process holds: cached, or saved and not yet written."""
        link = self._cached(response_id)
        if link is None and (saved := self._pending.get(response_id)) is not None:
            link = saved.link()
        return link

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

    def save(self, record: ResponseRecord) -> None:
        """Take `record`: this process serves it at once; the writer commits it. Never waits,
        never raises. An id already held here (a native answer replayed from the cache keeps
        its upstream id) stays its first owner's."""
        if record.id in self._pending or record.id in self._links:
            return
        saved = _Saved(
            record.id, record.owner, record.previous_response_id, record.root_id,
            record.depth, record.created_at, record.model[:256], record.status,
            orjson.dumps(_without_output(record.response)).decode(),
            orjson.dumps(record.input_items).decode(),
            orjson.dumps(record.output_items).decode())
        self._remember(record.id, saved.link())
        self._pending[record.id] = saved
        if len(self._pending) > _MAX_PENDING:
            lost, _ = self._pending.popitem(last=False)
            log.error("response %s was answered but not stored: %d writes are waiting",
                      lost, _MAX_PENDING)
        self._queue.append(saved)
        self._settled.clear()
        self._wake.set()
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name="responses-writer")

    async def _write_loop(self) -> None:
        while not (self._closing and not self._queue):
            await self._wake.wait()
            if not self._closing and len(self._queue) < _BATCH:
                await asyncio.sleep(BATCH_WAIT_S)
            self._wake.clear()
            waiting = len(self._queue)  # those saved meanwhile wait for the next round
            while waiting > 0:
                taken = [self._queue.popleft() for _ in range(min(waiting, _BATCH))]
                waiting -= len(taken)
                async with self._writes:  # a DELETE waits for this batch, or this for it
                    batch = [r for r in taken if r.id in self._pending]  # not deleted meanwhile
                    if batch:
                        await self._insert(batch)
                for record in batch:
                    self._pending.pop(record.id, None)
            await self._maybe_purge()
            if not self._pending:
                self._settled.set()

    async def _insert(self, batch: list[_Saved]) -> None:
        rows = [{
            "id": r.id, "owner": r.owner, "previous_response_id": r.previous_response_id,
            "root_id": r.root_id, "depth": r.depth, "created_at": r.created_at,
            "model": r.model, "status": r.status, "response_json": r.response,
            "input_items_json": r.input_items, "output_items_json": r.output_items}
            for r in batch]
        for attempt, pause in enumerate((0.0, *_WRITE_RETRIES_S)):
            if pause:
                await asyncio.sleep(pause)
            try:
                async with self._writing() as connection:
                    await connection.execute(_INSERT, rows)
                return
            except IntegrityError:
                if len(rows) > 1:  # one row already there (a retry that did commit): the rest
                    for row in rows:
                        await self._insert_one(row)
                return
            except (DBAPIError, OSError) as exc:
                log.warning("storing %d responses failed (attempt %d): %s", len(rows),
                            attempt + 1, type(exc).__name__)
        log.error("%d responses were answered but not stored: the database refused them",
                  len(rows))

    async def _insert_one(self, row: dict[str, Any]) -> None:
        try:
            async with self._writing() as connection:
                await connection.execute(_INSERT, [row])
        except IntegrityError:
            pass  # there already
        except (DBAPIError, OSError) as exc:
            log.warning("storing response %s failed: %s", row["id"], type(exc).__name__)

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for the writer's inserts, committed without waiting for the disk:
        the batch wait already accepts losing the last moments' rows to a crash (never
        consistency). Postgres: asynchronous commit for this transaction only. SQLite: the
        writer's own connection, `synchronous=NORMAL` (WAL: no fsync per commit)."""
        if self.db.is_sqlite and self.db.engine.url.database not in (None, "", ":memory:"):
            if self._write_engine is None:
                self._write_engine = _sqlite_writer(self.db.engine)
            async with self._write_engine.begin() as connection:
                yield connection
            return
        if self.db.is_sqlite:  # in memory: a second connection would be another database
            async with self.db.engine.begin() as connection:
                yield connection
            return
        async with self.db.engine.begin() as connection:
            await connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield connection

    async def _fresh(self, response_id: str,
                     load: Callable[[], Awaitable[T | None]]) -> T | None:
        """`load()`; when it finds nothing for an id minted moments ago that this process did
        not delete, another replica's write may still be on its way: poll for it a while."""
        found = await load()
        minted = _minted_at(response_id)
        if found is not None or minted is None or response_id in self._deleted \
                or not 0 <= time.time() - minted < FRESH_S:
            return found
        for pause in _FRESH_POLLS_S:
            await asyncio.sleep(pause)
            found = await load()
            if found is not None:
                break
        return found

    # --- reads for retrieve, delete and input_items ---------------------------------------

    async def get(self, response_id: str, owner: str) -> ResponseRecord | None:
        pending = self._pending.get(response_id)
        if pending is not None:
            return pending.record() if pending.owner == owner else None
        record = await self._fresh(response_id, lambda: self._load_record(response_id))
        return record if record is not None and record.owner == owner else None

    async def _load_record(self, response_id: str) -> ResponseRecord | None:
        query = select(_TABLE).where(_TABLE.c.id == response_id)
        async with self.db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None or self._expired(row.created_at):
            return None
        return ResponseRecord(
            id=row.id, owner=row.owner, previous_response_id=row.previous_response_id,
            root_id=row.root_id, depth=row.depth, created_at=row.created_at, model=row.model,
            status=row.status, response=_with_output(row.response, row.output_items),
            input_items=row.input_items, output_items=row.output_items)

    async def delete(self, response_id: str, owner: str) -> bool:
        """Delete a response of `owner`'s; False when there is none."""
        if await self.get(response_id, owner) is None:
            return False
        self._pending.pop(response_id, None)  # a write still queued is skipped
        if not self._pending:
            self._settled.set()
        self._forget(response_id)
        self._deleted.append(response_id)
        query = delete(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.owner == owner)
        # After a batch being inserted now (it may hold this response): the DELETE sticks.
        async with self._writes, self.db.engine.begin() as connection:
            await connection.execute(query)
        return True

    # --- retention and shutdown -----------------------------------------------------------

    async def _maybe_purge(self) -> None:
        """Run by the writer, at most once every _PURGE_EVERY_S."""
        now = time.monotonic()
        if self.retention is None or now - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now
        try:
            await self.purge()
        except (DBAPIError, OSError) as exc:
            log.warning("purging expired responses failed: %s", type(exc).__name__)

    async def purge(self) -> int:
        """Delete the rows older than the retention; how many went."""
        if self.retention is None:
            return 0
        cutoff = datetime.now(UTC) - self.retention
        async with self.db.engine.begin() as connection:
            result = await connection.execute(delete(_TABLE).where(_TABLE.c.created_at < cutoff))
        return result.rowcount

    async def flush(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Wait until every response saved so far is committed (or given up on)."""
        await asyncio.wait_for(self._settled.wait(), timeout)

    async def close(self) -> None:
        """Commit what is queued (answers already given), waiting at most CLOSE_WAIT_S."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            done, _ = await asyncio.wait([self._writer], timeout=CLOSE_WAIT_S)
            if not done:
                self._writer.cancel()
                log.error("%d responses were answered but not stored before shutdown",
                          len(self._pending))
        if self._write_engine is not None:
            await self._write_engine.dispose()


def _sqlite_writer(engine: AsyncEngine) -> AsyncEngine:
    """One connection to the same SQLite file, for the writer alone."""
    writer = create_async_engine(engine.url, poolclass=StaticPool, hide_parameters=True)
    event.listen(writer.sync_engine, "connect", _writer_pragmas)
    return writer


def _writer_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _link(row: Any) -> _Link:
    return _Link(row.owner, row.previous_response_id, row.root_id, row.depth, row.created_at,
                 row.input_json.encode(), row.output_json.encode())
