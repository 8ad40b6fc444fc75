"""UsageLog: each request priced at once, its row built a little later with the others that
finished meanwhile, and nothing left unbuilt at shutdown.

The writer, spool and real Postgres behind it are tested in test_writer and test_usage_logging.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from gateway.settings import Settings
from gateway.usage import codec, setup
from gateway.usage.setup import UsageLog
from tests.gateway.usage.test_row import finished_request


class Store:
    """What UsageLog needs of a UsageStore: rows land in a list."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    async def insert(self, rows: list[bytes]) -> None:
        self.rows += [codec.decode(row) for row in rows]

    async def close(self) -> None:
        pass


def request(i: int):
    ctx = finished_request(request_id=f"req-{i}")
    return ctx


@pytest.fixture
def usage(tmp_path) -> UsageLog:
    return UsageLog(Settings(_env_file=None, spool_dir=tmp_path, usage_flush_interval_s=0.01),
                    Store())  # type: ignore[arg-type]


async def until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_the_price_is_set_at_once_and_the_row_follows_within_the_delay(usage):
    usage.writer.start()
    ctx = request(1)
    usage.record(ctx)
    # The recorders after this one (metrics, limits) read the cost as soon as it returns.
    assert ctx.priced and ctx.cost_usd == Decimal("0.0000135")
    assert usage.depth == 1 and usage.writer.depth == 0  # waiting to be built, still counted
    await until(lambda: usage.store.rows)  # no more requests: the timer builds it
    assert [row["id"] for row in usage.store.rows] == ["req-1"]
    assert usage.store.rows[0]["cost_usd"] == Decimal("0.0000135")
    assert usage.store.rows[0]["prompt_tokens"] == 10 and usage.depth == 0
    await usage.close()


async def test_a_full_group_is_built_without_waiting(usage):
    for i in range(setup.BUILD_AT):
        usage.record(request(i))
    assert usage.writer.depth == setup.BUILD_AT  # built as the last one came in
    usage.record(request(setup.BUILD_AT))
    assert usage.writer.depth == setup.BUILD_AT and usage.depth == setup.BUILD_AT + 1
    usage.writer.start()
    await usage.close()
    assert [row["id"] for row in usage.store.rows] == [
        f"req-{i}" for i in range(setup.BUILD_AT + 1)]


async def test_shutdown_builds_and_writes_what_was_waiting(usage):
    usage.writer.start()
    for i in range(3):
        usage.record(request(i))
    await usage.close()  # well inside the delay: close must not leave them behind
    assert [row["id"] for row in usage.store.rows] == ["req-0", "req-1", "req-2"]


async def test_a_row_that_cannot_be_built_costs_the_others_nothing(usage, caplog):
    usage.writer.start()
    broken = request(1)
    broken.attempts = [object()]  # type: ignore[list-item]  # no as_dict: the build fails
    for ctx in (request(0), broken, request(2)):
        usage.record(ctx)
    usage.build_rows()
    assert usage.writer.depth == 2
    assert "could not build the row for request req-1" in caplog.text
    await usage.close()
    assert [row["id"] for row in usage.store.rows] == ["req-0", "req-2"]


def test_recorded_outside_an_event_loop_the_row_is_built_at_once(usage):
    usage.record(request(1))
    assert usage.writer.depth == 1


async def test_rows_with_nowhere_to_go_are_logged_and_the_request_finishes(tmp_path, caplog):
    blocked = tmp_path / "spool"
    blocked.write_text("a file where the spool directory should be")
    usage = UsageLog(Settings(_env_file=None, spool_dir=blocked), Store())  # type: ignore[arg-type]
    usage.writer.queue_size = 3  # the rest of a group must be spooled, and cannot be
    for i in range(setup.BUILD_AT):
        usage.record(request(i))  # the last one builds the group; it must not raise
    assert "those the queue could not take could not be spooled either" in caplog.text
    assert usage.writer.depth == 3  # what fitted is kept
    usage.writer.start()
    await usage.close()
    assert [row["id"] for row in usage.store.rows] == ["req-0", "req-1", "req-2"]


async def test_a_request_recorded_after_shutdown_is_spooled_for_the_next_start(usage):
    usage.writer.start()
    await usage.close()
    usage.record(request(7))  # a stream that ended after the lifespan closed the log
    assert usage.spool.pending_rows() == 1 and usage.depth == 0
    [path] = usage.spool.claim()
    assert [codec.decode(row)["id"] for row in usage.spool.read(path)] == ["req-7"]
