"""The writer's queue, spool and replay logic, with an insert function that can be told to fail.

The real-Postgres behaviour (outage during a burst, restart replay) is in test_usage_logging.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.usage import codec
from gateway.usage.spool import Spool
from gateway.usage.writer import DatabaseUnavailable, UsageWriter
from tests.support.waiting import until


class Table:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.down = False
        self.batches: list[int] = []

    async def insert(self, rows: list[bytes]):
        self.batches.append(len(rows))
        if self.down:
            raise DatabaseUnavailable("down")
        rows = [codec.decode(row) for row in rows]
        if any(row["error_type"] == "poison" for row in rows):
            raise ValueError("refused")
        known = {r["id"] for r in self.rows}
        self.rows += [r for r in rows if r["id"] not in known]


def row(i: int, **extra) -> bytes:
    return codec.encode({"id": f"r{i}", "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                         "cost_usd": Decimal("0.0001"), **extra})


async def test_outage_spools_then_replays_in_order(tmp_path):
    table = Table()
    writer = UsageWriter(table.insert, Spool(tmp_path), batch_size=10, interval_s=0.01)
    writer.start()
    table.down = True
    for i in range(25):
        writer.submit(row(i))
    assert await until(lambda: writer.spool.pending_rows() == 25)
    assert table.rows == []
    table.down = False
    for i in range(25, 30):
        writer.submit(row(i))
    await writer.close()
    assert [r["id"] for r in table.rows] == [f"r{i}" for i in range(30)]
    assert table.rows[0]["cost_usd"] == Decimal("0.0001")
    assert not writer.spool.pending()


async def test_full_queue_spools_instead_of_dropping(tmp_path):
    table = Table()
    writer = UsageWriter(table.insert, Spool(tmp_path), queue_size=5, batch_size=100)
    for i in range(12):  # the writer is not running: the queue fills up
        writer.submit(row(i))
    assert writer.depth == 5 and writer.spool.pending_rows() == 7
    writer.start()
    await writer.close()
    assert sorted(r["id"] for r in table.rows) == sorted(f"r{i}" for i in range(12))


async def test_rows_a_full_queue_cannot_take_go_to_the_spool_in_one_write(tmp_path):
    table = Table()
    writer = UsageWriter(table.insert, Spool(tmp_path), queue_size=5, batch_size=100)
    writer.submit_many([row(i) for i in range(3)])
    appends = []
    append = writer.spool.append
    writer.spool.append = lambda rows: (appends.append(len(rows)), append(rows))  # type: ignore[method-assign]
    writer.submit_many([row(i) for i in range(3, 8)])
    assert writer.depth == 5 and appends == [3]  # r3 and r4 queued, r5 to r7 in one fsync
    writer.start()
    await writer.close()
    assert sorted(r["id"] for r in table.rows) == sorted(f"r{i}" for i in range(8))


async def test_rows_submitted_after_close_or_never_written_are_spooled(tmp_path):
    table = Table()
    writer = UsageWriter(table.insert, Spool(tmp_path))
    writer.submit(row(0))  # never started: close cannot write it, and must not drop it
    await writer.close()
    writer.submit_many([row(1), row(2)])
    assert table.rows == [] and writer.depth == 0 and writer.spool.pending_rows() == 3
    replayer = UsageWriter(table.insert, Spool(tmp_path), interval_s=0.01)
    replayer.start()
    await replayer.close()
    assert [r["id"] for r in table.rows] == ["r0", "r1", "r2"]


async def test_a_refused_row_is_set_aside_and_the_rest_written(tmp_path):
    table = Table()
    writer = UsageWriter(table.insert, Spool(tmp_path), batch_size=10)
    writer.start()
    for i in range(5):
        writer.submit(row(i, error_type="poison" if i == 2 else None))
    await writer.close()
    assert [r["id"] for r in table.rows] == ["r0", "r1", "r3", "r4"]
    assert list(tmp_path.glob("rejected-*.rows"))


async def test_a_new_process_replays_rows_spooled_by_a_dead_one(tmp_path):
    table = Table()
    (tmp_path / "replay-999999-00000000000000000001-usage-999999.jsonl").write_bytes(
        b'{"id":"old","created_at":"2026-01-01T00:00:00+00:00","cost_usd":"0.5"}\n')
    writer = UsageWriter(table.insert, Spool(tmp_path), interval_s=0.01)
    writer.start()
    await writer.close()
    [replayed] = table.rows
    assert (replayed["id"], replayed["created_at"], replayed["cost_usd"]) == \
        ("old", datetime(2026, 1, 1, tzinfo=UTC), Decimal("0.5"))


async def test_rows_go_in_full_batches_or_once_the_interval_has_passed(tmp_path):
    table = Table()
    writer = UsageWriter(table.insert, Spool(tmp_path), batch_size=10, interval_s=1.0)
    writer.start()
    for i in range(25):
        writer.submit(row(i))
    assert await until(lambda: len(table.batches) >= 2)
    # Two full batches went at once; the last five wait for the interval, not one per row.
    assert table.batches == [10, 10] and writer.depth == 5
    assert await until(lambda: writer.depth == 0)
    assert table.batches == [10, 10, 5]
    await writer.close()
    assert [r["id"] for r in table.rows] == [f"r{i}" for i in range(25)]
