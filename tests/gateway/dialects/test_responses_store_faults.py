"""The response store when the database misbehaves: a row it refuses is lost alone (not with
the rows committed beside it), values are made to fit their columns or refused, a DELETE never
waits out the writer's retries, and a hung database (a relay that stops passing bytes in
front of the real Postgres) costs a read, a chain, a DELETE or an insert a bounded time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from gateway.db import migrate
from gateway.db.engine import Database, open_database
from gateway.settings import Settings
from gateway.store.responses import ResponseRecord, ResponseStore, bounds, owner_of
from gateway.store.responses import writer as writer_module
from gateway.store.responses.bounds import StoreTimeout
from gateway.store.responses.records import Saved
from tests.gateway.dialects.test_responses_store import db, record  # noqa: F401 - fixture
from tests.support.databases import database_url, require_postgres  # noqa: F401
from tests.support.servers import ThreadedServer
from tests.support.tcp_relay import TcpRelay

GUARD_S = 20  # a test that would hang fails after this instead (never a timing assertion)


@pytest.fixture
def relay() -> Iterator[tuple[TcpRelay, str]]:
    """The test Postgres behind a relay: (the relay, the URL through it)."""
    url = make_url(require_postgres())
    relay = TcpRelay((url.host or "127.0.0.1", url.port or 5432)).start()
    try:
        yield relay, url.set(port=relay.port).render_as_string(hide_password=False)
    finally:
        relay.thaw()
        relay.close()


@pytest.fixture
async def hung_db(relay: tuple[TcpRelay, str]) -> AsyncIterator[Database]:
    database = open_database(Settings(_env_file=None, database_url=relay[1]))
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        relay[0].thaw()
        await database.close()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Statements time out after 0.3 s, writes are retried every 0.05 s."""
    monkeypatch.setattr(bounds, "DB_TIMEOUT_S", 0.3)
    monkeypatch.setattr(writer_module, "WRITE_RETRIES_S", (0.05,) * 400)


# --- rows the database refuses ---------------------------------------------------------------

@pytest.fixture
def postgres_url() -> str:
    return require_postgres()


async def test_a_row_the_database_refuses_is_lost_alone(postgres_url: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture):
    """One row in a group commit that Postgres refuses (a status too long for its column,
    past the store's own fitting) must not take the others with it, nor be taken for an
    outage: no retry (it would wait an hour here), the store stays healthy."""
    monkeypatch.setattr(writer_module, "WRITE_RETRIES_S", (3600.0,))
    database = open_database(Settings(_env_file=None, database_url=postgres_url))
    await migrate.upgrade(database)
    store = ResponseStore(database, 30)
    try:
        good = [record(f"resp_good_{n}") for n in range(3)]
        bad = replace(Saved.of(record("resp_bad")), status="refused-" * 4)
        store.save(good[0])
        store.writer.submit(bad)  # one round: the four rows go in one statement first
        store.save(good[1])
        store.save(good[2])
        with caplog.at_level(logging.ERROR, logger="gateway.responses"):
            await asyncio.wait_for(store.flush(), GUARD_S)
        assert store.writer.healthy
        assert all([await store.written(each.id) for each in good])
        reader = ResponseStore(database, 30)  # another replica: reads the table
        for each in good:
            assert await reader.get(each.id, "key:a") is not None
        assert await reader.get("resp_bad", "key:a") is None
        assert "resp_bad" in caplog.text and "refused-" not in caplog.text  # no value logged
    finally:
        await store.close()
        await database.close()


async def test_values_are_fitted_to_their_columns_or_the_response_refused(db: Database):  # noqa: F811
    """A native upstream's status or model too long (or with a NUL) is cut to the column,
    the Response object keeping it whole; a key too long is never cut (it would name
    another response): that response is not stored, and the rest are."""
    store = ResponseStore(db, 30)
    odd = replace(record("resp_odd"), status="completed_but_very_long_status",
                  model="m\x00" + "o" * 300,
                  response={"id": "resp_odd", "status": "completed_but_very_long_status"})
    too_long = record("resp_" + "a" * 90)
    store.save(odd)
    store.save(too_long)
    store.save(record("resp_next"))
    await asyncio.wait_for(store.flush(), GUARD_S)
    reader = ResponseStore(db, 30)
    got = await reader.get("resp_odd", "key:a")
    assert got is not None and got.status == "completed_but_ve" and got.model == "m" + "o" * 255
    assert got.response["status"] == "completed_but_very_long_status"
    assert await reader.get(too_long.id, "key:a") is None
    assert await store.get(too_long.id, "key:a") is None  # nor served from here
    assert await reader.get("resp_next", "key:a") is not None
    await store.close()


# --- DELETE and the writer ---------------------------------------------------------------------

async def test_a_delete_does_not_wait_out_the_writers_retries(
        db: Database, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    """The writer pauses between attempts without its lock: a DELETE goes through at once
    (it used to wait the whole pause, 0.5/2/8 s; here an hour)."""
    monkeypatch.setattr(writer_module, "WRITE_RETRIES_S", (3600.0,))
    monkeypatch.setattr(writer_module, "CLOSE_WAIT_S", 0.1)
    store = ResponseStore(db, 30)

    async def down(batch: list[Any]) -> None:
        raise DBAPIError("INSERT", None, OSError("the database is down"))

    monkeypatch.setattr(store.table, "insert", down)
    store.save(record("resp_x"))
    assert await store.written("resp_x") is False  # failed once: the writer now pauses
    assert await asyncio.wait_for(store.delete("resp_x", "key:a"), GUARD_S) is True
    assert await store.get("resp_x", "key:a") is None
    await store.close()


# --- a hung database ---------------------------------------------------------------------------

async def test_reads_of_a_hung_database_end_in_time(hung_db: Database, quick: None,
                                                    relay: tuple[TcpRelay, str]):
    maker = ResponseStore(hung_db, 30)
    maker.save(record("resp_kept"))
    await asyncio.wait_for(maker.flush(), GUARD_S)
    relay[0].freeze()
    reader = ResponseStore(hung_db, 30)  # another replica: nothing cached
    for work in (reader.get("resp_kept", "key:a"), reader.chain("resp_kept", "key:a"),
                 reader.delete("resp_kept", "key:a")):
        with pytest.raises(StoreTimeout):
            await asyncio.wait_for(work, GUARD_S)
    relay[0].thaw()
    assert await asyncio.wait_for(reader.get("resp_kept", "key:a"), GUARD_S) is not None
    await maker.close()


async def test_a_hung_insert_gives_way_and_is_retried(hung_db: Database, quick: None,
                                                      relay: tuple[TcpRelay, str]):
    """An insert the database never answers is given up on after DB_TIMEOUT_S (the answer
    went out before, after WRITE_WAIT_S at most), so a DELETE waiting for it goes on (and,
    its own statement hanging too, fails: a DELETE that did not answer 200 may not have
    happened, the client repeats it); the row is written once the database answers again."""
    store = ResponseStore(hung_db, 30)
    store.save(record("resp_warm"))  # the writer's connection is open, then the database hangs
    await asyncio.wait_for(store.flush(), GUARD_S)
    relay[0].freeze()
    store.save(record("resp_kept"))
    store.save(record("resp_gone"))
    assert await asyncio.wait_for(store.written("resp_kept"), GUARD_S) is False
    with pytest.raises(StoreTimeout):  # waited for the insert, then its own statement hung
        await asyncio.wait_for(store.delete("resp_gone", "key:a"), GUARD_S)
    relay[0].thaw()
    await asyncio.wait_for(store.flush(), GUARD_S)
    reader = ResponseStore(hung_db, 30)
    assert await reader.get("resp_kept", "key:a") is not None
    await asyncio.wait_for(store.delete("resp_gone", "key:a"), GUARD_S)  # repeated: sticks
    assert await reader.get("resp_gone", "key:a") is None
    await store.close()


def test_a_hung_database_is_a_503_naming_the_store(
        start_gateway: Any, relay: tuple[TcpRelay, str], monkeypatch: pytest.MonkeyPatch):
    """Through the gateway: GET of an id not cached, and a chain from one, answer 503 in the
    Responses error shape once the statement's time is up, instead of hanging."""
    gateway: ThreadedServer = start_gateway(database_url=relay[1], auto_migrate=True)
    headers = {"x-portkey-provider": "anyscale", "authorization": "Bearer sk-hung"}
    made = record("resp_elsewhere", owner=owner_of(None, "sk-hung"))
    asyncio.run(_made_on_another_replica(relay[1], made))  # nothing of it cached here
    warm = httpx.get(f"{gateway.url}/v1/responses/resp_none", headers=headers, timeout=GUARD_S)
    assert warm.status_code == 404  # (the caller's credentials are known from now on)
    monkeypatch.setattr(bounds, "DB_TIMEOUT_S", 0.3)
    relay[0].freeze()
    try:
        answers = [
            httpx.get(f"{gateway.url}/v1/responses/{made.id}", headers=headers,
                      timeout=GUARD_S),
            httpx.post(f"{gateway.url}/v1/responses", headers=headers, timeout=GUARD_S,
                       json={"model": "m", "input": "on", "previous_response_id": made.id})]
    finally:
        relay[0].thaw()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "store_unavailable" and "response store" in error["message"]
    assert httpx.get(f"{gateway.url}/v1/responses/{made.id}", headers=headers,
                     timeout=GUARD_S).status_code == 200


async def _made_on_another_replica(url: str, made: ResponseRecord) -> None:
    database = open_database(Settings(_env_file=None, database_url=url))
    store = ResponseStore(database, 30)
    store.save(made)
    await store.close()
    await database.close()
