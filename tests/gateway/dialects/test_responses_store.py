"""The stored-Responses table on SQLite and Postgres: ownership, chains by parent pointer,
deletion, retention, the indexed (one query) chain load, answers that wait for their row's
commit (never longer than the write wait, never on a failing database), and writes that never
fail an answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from gateway.contracts.outcome import Outcome
from gateway.db import migrate
from gateway.db.engine import Database, open_database
from gateway.pipeline.dialects.responses import ResponsesTurn
from gateway.pipeline.stored_responses import StoredStream
from gateway.settings import Settings
from gateway.store.responses import ResponseRecord, ResponseStore, mint_response_id, owner_of
from gateway.store.responses import writer as writer_module
from providers.base import Endpoint
from tests.support.databases import database_url  # noqa: F401 - the sqlite/postgres fixture
from tests.support.servers import free_port


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:  # noqa: F811
    database = open_database(Settings(_env_file=None, database_url=database_url))
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.close()


def record(response_id: str, owner: str = "key:a", parent: ResponseRecord | None = None,
           text: str | None = None, age_days: float = 0) -> ResponseRecord:
    said = text or f"turn {response_id}"
    output = [{"type": "message", "id": f"msg_out_{response_id}", "role": "assistant",
               "status": "completed", "content": [
                   {"type": "output_text", "text": f"answer {response_id}", "annotations": []}]}]
    return ResponseRecord(
        id=response_id, owner=owner, previous_response_id=parent.id if parent else None,
        root_id=parent.root_id if parent else response_id,
        depth=parent.depth + 1 if parent else 0,
        created_at=datetime.now(UTC) - timedelta(days=age_days), model="m",
        status="completed", response={"id": response_id, "object": "response",
                                      "output": output},
        input_items=[{"type": "message", "id": f"msg_in_{response_id}", "role": "user",
                      "content": [{"type": "input_text", "text": said}]}],
        output_items=output)


def said(items: list[dict[str, Any]]) -> list[str]:
    """The user's words in a chain's items, oldest first."""
    return [item["content"][0]["text"] for item in items if item["role"] == "user"]


async def test_save_get_delete_scoped_to_the_owner(db: Database):
    store = ResponseStore(db, 30)
    first = record("resp_1")
    store.save(first)
    assert await store.get("resp_1", "key:a") == first  # served at once, before the write
    assert await store.get("resp_1", "key:b") is None
    await store.flush()
    fresh = ResponseStore(db, 30)  # another replica: nothing cached, read from the table
    got = await fresh.get("resp_1", "key:a")
    assert got is not None and got.response == first.response
    assert got.input_items == first.input_items and got.created_at.tzinfo is not None
    assert await fresh.get("resp_1", "key:b") is None
    assert await fresh.chain("resp_1", "key:b") is None
    assert await fresh.delete("resp_1", "key:b") is False
    assert await fresh.delete("resp_1", "key:a") is True
    assert await fresh.get("resp_1", "key:a") is None
    assert await fresh.chain("resp_1", "key:a") is None
    await store.close()


async def test_a_chain_is_its_ancestors_only_oldest_first(db: Database):
    store = ResponseStore(db, 30)
    root = record("resp_r")
    a = record("resp_a", parent=root)
    b = record("resp_b", parent=a)
    sibling = record("resp_s", parent=root)  # a branch from the root: not b's history
    for each in (root, a, b, sibling):
        store.save(each)
    await store.flush()
    for reader in (store, ResponseStore(db, 30)):  # cached, and loaded from the table
        chain = await reader.chain("resp_b", "key:a")
        assert chain is not None and (chain.root_id, chain.depth) == ("resp_r", 2)
        assert said(chain.items) == ["turn resp_r", "turn resp_a", "turn resp_b"]
        branch = await reader.chain("resp_s", "key:a")
        assert branch is not None and said(branch.items) == ["turn resp_r", "turn resp_s"]
    # A deleted ancestor ends the history there.
    assert await store.delete("resp_a", "key:a")
    for reader in (store, ResponseStore(db, 30)):
        chain = await reader.chain("resp_b", "key:a")
        assert chain is not None and said(chain.items) == ["turn resp_b"]
    await store.close()


async def test_a_cold_twenty_turn_chain_loads_in_two_queries(db: Database):
    writer = ResponseStore(db, 30)
    previous = None
    for turn in range(20):
        previous = record(f"resp_{turn:02d}", parent=previous)
        writer.save(previous)
    await writer.close()
    assert not writer.writer.pending
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        reader = ResponseStore(db, 30)
        chain = await reader.chain("resp_19", "key:a")
        assert chain is not None and len(chain.items) == 40  # 20 turns, in and out
        assert said(chain.items)[0] == "turn resp_00"
        assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
        statements.clear()
        again = await reader.chain("resp_19", "key:a")
        assert again == chain and statements == []  # every link cached
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_expired_responses_are_never_served_and_are_purged(db: Database):
    keeper = ResponseStore(db, 0)  # 0 days: keeps everything, never purges
    old = record("resp_old", age_days=31)
    keeper.save(old)
    keeper.save(record("resp_young", parent=old, age_days=1))
    await keeper.flush()
    reader = ResponseStore(db, 30)
    assert await reader.get("resp_old", "key:a") is None
    assert await reader.chain("resp_old", "key:a") is None
    chain = await reader.chain("resp_young", "key:a")
    assert chain is not None and said(chain.items) == ["turn resp_young"]
    assert await reader.purge() == 1
    assert await keeper.get("resp_old", "key:a") is None  # gone from the table
    assert await keeper.get("resp_young", "key:a") is not None
    assert await keeper.purge() == 0
    # A store with a retention purges by itself, from its first write on.
    keeper.save(record("resp_older", age_days=40))
    await keeper.flush()
    purger = ResponseStore(db, 30)
    purger.save(record("resp_new"))
    await purger.flush()
    assert await keeper.get("resp_older", "key:a") is None
    await keeper.close()
    await purger.close()


async def test_a_broken_database_never_fails_the_save(monkeypatch):
    monkeypatch.setattr(writer_module, "WRITE_RETRIES_S", (0.01,))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    database = open_database(Settings(_env_file=None, database_url=url))
    store = ResponseStore(database, 30)
    try:
        first = record("resp_1")
        store.save(first)  # does not raise
        store.save(record("resp_2", parent=first))
        assert await store.written("resp_1") is False  # the answer is not held: it goes out
        store.save(record("resp_3"))
        assert await store.written("resp_3") is False  # degraded: nothing waits meanwhile
        chain = await store.chain("resp_2", "key:a")  # this process can chain from it
        assert chain is not None and said(chain.items) == ["turn resp_1", "turn resp_2"]
        assert (await store.get("resp_1", "key:a")) == first
        await store.flush()  # the writes were given up on, after their retries
        await store.close()
        assert store.writer.task is not None and store.writer.task.done()
    finally:
        await database.close()


async def test_an_id_not_found_is_answered_at_once_however_fresh(db: Database):
    """No polling for an id minted moments ago: its row was committed before the client saw
    it. (The poll this replaces made a forged fresh id cost 8 queries over 1.35 s.)"""
    store = ResponseStore(db, 30)
    selects: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            selects.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        forged = mint_response_id()  # the time is public: anyone can make a fresh id
        assert await store.get(forged, "key:a") is None
        assert len(selects) == 1
        assert await store.chain(forged, "key:a") is None
        assert len(selects) == 2
        assert await store.delete(forged, "key:a") is False
        assert len(selects) == 3
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    await store.close()


def test_owners_tell_keys_and_anonymous_credentials_apart():
    assert owner_of("k1", "sk-a") == owner_of("k1", "sk-b") == "key:k1"
    anonymous = owner_of(None, "sk-a")
    assert anonymous.startswith("anon:") and "sk-a" not in anonymous
    assert anonymous != owner_of(None, "sk-b") != owner_of(None, None)


async def test_an_answer_waits_for_its_row_at_most_the_write_wait(
        db: Database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(writer_module, "WRITE_WAIT_S", 0.05)
    store = ResponseStore(db, 30)
    release = asyncio.Event()
    insert = store.table.insert

    async def hung_insert(batch: list[Any]) -> None:
        await release.wait()
        await insert(batch)

    monkeypatch.setattr(store.table, "insert", hung_insert)
    store.save(record("resp_hung"))
    assert await store.written("resp_hung") is False  # released: the database hangs
    assert await store.get("resp_hung", "key:a") is not None  # served from here meanwhile
    release.set()
    await store.flush()
    assert await ResponseStore(db, 30).get("resp_hung", "key:a") is not None
    assert await store.written("resp_hung") is True  # committed: nothing to wait for
    await store.close()


async def test_a_stored_stream_sends_its_terminal_event_once_its_row_commits():
    committed, waiting = asyncio.Event(), asyncio.Event()

    class HeldStore:  # the response store, its commit held until `committed` is set
        def save(self, record: ResponseRecord) -> None:
            pass

        async def written(self, response_id: str) -> bool:
            waiting.set()
            await committed.wait()
            return True

    turn = ResponsesTurn()
    turn.decode(Endpoint.CHAT, orjson.dumps({"input": "x", "stream": True}))
    turn.continue_from("key:a", None, HeldStore())  # type: ignore[arg-type]
    encoder = turn.stream_encoder(Outcome(None))  # type: ignore[arg-type]
    chunks = [{"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]

    class Relay:  # a translated stream's relay, as SSERelay sends it
        status_code, raw_headers, answer = 200, [], SimpleNamespace(native=False)

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            for each in chunks:
                await send({"type": "http.response.body", "body": encoder.chunk(each)})
            await send({"type": "http.response.body", "body": encoder.end()})

    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["body"])

    stream = StoredStream(Relay(), turn)  # type: ignore[arg-type]
    relay = asyncio.create_task(stream({}, None, send))  # type: ignore[arg-type]
    held = asyncio.create_task(waiting.wait())
    await asyncio.wait([relay, held], return_when=asyncio.FIRST_COMPLETED)
    assert not relay.done() and turn.record is not None  # waiting for the commit
    assert sent and not any(b"response.completed" in body for body in sent)
    committed.set()
    await relay
    assert len(sent) == len(chunks) + 1 and b"event: response.completed\n" in sent[-1]


async def test_a_batch_larger_than_one_statement_is_written_whole(db: Database):
    store = ResponseStore(db, 30)
    for n in range(200):  # saved at once: one round of the writer (SQLite: 3 statements)
        store.save(record(f"resp_many_{n:03d}"))
    await store.flush()
    reader = ResponseStore(db, 30)
    found = [await reader.get(f"resp_many_{n:03d}", "key:a") for n in range(200)]
    assert all(each is not None for each in found)
    await store.close()


async def test_a_bug_in_a_round_releases_its_answers_and_the_writer_goes_on(
        db: Database, monkeypatch: pytest.MonkeyPatch):
    store = ResponseStore(db, 30)
    insert = store.table.insert
    calls = 0

    async def broken_once(batch: list[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug, not a database error")
        await insert(batch)

    monkeypatch.setattr(store.table, "insert", broken_once)
    store.save(record("resp_lost"))
    assert await store.written("resp_lost") is False
    store.save(record("resp_kept"))
    assert await store.written("resp_kept") is True
    reader = ResponseStore(db, 30)
    assert await reader.get("resp_kept", "key:a") is not None
    assert await reader.get("resp_lost", "key:a") is None
    await store.close()
