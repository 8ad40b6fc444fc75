"""The crash-safe usage journal: its records, segments and claims, and real gateways killed
with SIGKILL whose answered requests still get exactly one row each in Postgres."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson

from gateway.settings import Settings
from gateway.usage import codec, journal
from gateway.usage.journal import Journal
from gateway.usage.setup import UsageLog
from gateway.usage.spool import Spool
from gateway.usage.store import UsageStore
from gateway.usage.writer import DatabaseUnavailable
from tests.gateway.usage.test_row import finished_request
from tests.gateway.usage.test_store import opened_store
from tests.support.databases import POSTGRES_URL, query, require_postgres
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def row(request_id: str | None = None) -> bytes:
    return codec.encode({"id": request_id or str(uuid.uuid4()), "endpoint": "chat",
                         "created_at": datetime.now(UTC), "stream": False,
                         "tokens_estimated": False, "retry_count": 0, "latency_ms": 1.5,
                         "cost_usd": Decimal("0.000001"), "metadata": {"note": "a\nb"}})


def row_id(encoded: bytes) -> str:
    return str(orjson.loads(encoded)[0])


def spooled(directory: Path) -> list[bytes]:
    spool = Spool(directory)
    return [r for path in sorted(directory.glob("usage-*")) for r in spool.read(path)]


def journaled(directory: Path) -> list[bytes]:
    """Every whole record in a journal directory, whoever wrote it."""
    return [r for path in sorted(directory.glob("journal-*.log"))
            for r in journal.decode(path.read_bytes())[0]]


def kill_while_journaling(directory: Path, rows: list[bytes]) -> None:
    """Journal rows in another process, then SIGKILL it: a dead journal, as a crash leaves it."""
    script = ("import os, signal, sys\n"
              "from pathlib import Path\n"
              "from gateway.usage.journal import Journal\n"
              "from gateway.usage.spool import Spool\n"
              "j = Journal(Path(sys.argv[1]), segment_bytes=1000)\n"
              "j.start(Spool(Path(sys.argv[1]) / 'unused'))\n"
              "rows = sys.stdin.buffer.read().split(b'\\n')\n"
              "for i, r in enumerate(rows):\n"
              "    j.append([r], i)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script, str(directory)], cwd=ROOT,
                          input=b"\n".join(rows), capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


# --- records ---------------------------------------------------------------------------------

def test_records_round_trip_and_a_torn_last_record_is_skipped():
    rows = [row() for _ in range(3)]
    data = journal.encode(rows)
    assert journal.decode(data) == (rows, 0)
    assert data.count(b"\n") == 3  # a row's own newlines are escaped: one line per record
    last = len(journal.encode(rows[2:]))
    for cut in (2, 9, last - 9, last - 3, last - 1):  # inside the row, the checksum
        assert journal.decode(data[:len(data) - cut]) == (rows[:2], 1)
    assert journal.decode(data[:-1]) == (rows, 0)  # only its newline lost: the checksum holds


def test_a_corrupt_record_is_skipped_and_the_others_read():
    rows = [row() for _ in range(3)]
    data = bytearray(journal.encode(rows))
    at = data.index(b"chat", len(journal.encode(rows[:1])))  # inside the second row
    data[at] = ord("C")
    assert journal.decode(bytes(data)) == ([rows[0], rows[2]], 1)
    assert journal.decode(b"zzzzzzzz " + rows[0] + b"\n") == ([], 1)  # not even hex


# --- segments --------------------------------------------------------------------------------

def test_segments_rotate_and_go_once_the_writer_settled_their_rows(tmp_path):
    j = Journal(tmp_path / "journal", segment_bytes=1)  # every append closes the segment
    j.start(Spool(tmp_path / "spool"))
    for queued in range(3):  # the writer's count before each row is submitted
        j.append([row()], queued)
    assert len(j.segments()) == 3
    j.release(settled=1, queued=3)  # the first row is written: its segment goes
    assert [p.name[-10:] for p in j.segments()] == ["000002.log", "000003.log"]
    j.release(settled=2, queued=3)
    assert len(j.segments()) == 1 and len(journaled(j.directory)) == 1
    j.release(settled=3, queued=3)  # everything settled: the open segment is emptied
    assert [p.stat().st_size for p in j.segments()] == [0]
    j.append([row()], 3)
    assert len(journaled(j.directory)) == 1
    j.close(settled=4, queued=4)
    assert list(j.directory.iterdir()) == []  # lock file included


def test_rows_not_settled_at_close_are_left_for_the_next_process(tmp_path):
    rows = [row() for _ in range(3)]
    first = Journal(tmp_path / "journal")
    first.start(Spool(tmp_path))
    first.append(rows, 0)
    first.close(settled=1, queued=3)  # a writer that could neither write nor spool them all
    assert journaled(first.directory) == rows
    nxt = Journal(tmp_path / "journal")
    assert nxt.start(Spool(tmp_path)) == 3
    assert spooled(tmp_path) == rows and nxt.segments() == []
    assert [p.name for p in nxt.directory.iterdir()] == [nxt.lock_path.name]


def test_a_held_segment_outlives_release_and_close(tmp_path):
    j = Journal(tmp_path / "journal")
    j.start(Spool(tmp_path))
    lost = [row()]
    j.append(lost, 0)
    j.hold()  # neither queued nor spooled: only the journal has it
    j.append([row()], 0)
    j.release(settled=1, queued=1)
    j.close(settled=1, queued=1)
    assert journaled(j.directory) == lost
    assert Journal(tmp_path / "journal").start(Spool(tmp_path)) == 1


def test_an_unwritable_directory_leaves_the_gateway_running_without_a_journal(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    j = Journal(blocked / "journal")
    assert j.start(Spool(tmp_path)) == 0
    j.append([row()], 0)  # nothing to write to: no error
    j.release(1, 1)
    j.close(1, 1)


# --- claims ----------------------------------------------------------------------------------

def test_a_killed_process_journal_is_recovered_once_even_with_two_claimants(tmp_path):
    directory = tmp_path / "journal"
    rows = [row() for _ in range(12)]  # several segments of 1,000 bytes
    kill_while_journaling(directory, rows)
    assert len(list(directory.glob("journal-*.log"))) > 1
    with (directory / os.listdir(directory)[0]).open("ab") as any_segment:
        any_segment.write(b"0000")  # a torn record, as a kill mid-write leaves one
    first, second = Journal(directory), Journal(directory)
    assert first.start(Spool(tmp_path / "a")) == 12
    assert second.start(Spool(tmp_path / "b")) == 0  # already claimed and deleted
    assert spooled(tmp_path / "a") == rows and spooled(tmp_path / "b") == []
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [first.lock_path.name, second.lock_path.name])


def test_a_live_journal_is_never_claimed(tmp_path):
    directory = tmp_path / "journal"
    live = Journal(directory)
    live.start(Spool(tmp_path / "a"))
    live.append([row()], 0)
    assert Journal(directory).start(Spool(tmp_path / "b")) == 0
    assert len(journaled(directory)) == 1 and spooled(tmp_path / "b") == []


# --- the usage log ---------------------------------------------------------------------------

class _Pacer:
    def request_finished(self) -> None:
        pass


class Store:
    """What the usage log needs of a UsageStore: batches land in a list."""

    def __init__(self) -> None:
        self.rows: list[bytes] = []
        self.pacer = _Pacer()

    async def insert(self, rows: list[bytes]) -> None:
        self.rows += rows

    async def ensure_partitions(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_the_usage_log_journals_rows_until_written_and_cleans_up_at_close(tmp_path):
    settings = Settings(_env_file=None, spool_dir=tmp_path, usage_flush_interval_s=3600)
    usage = UsageLog(settings, Store())  # type: ignore[arg-type]
    await usage.start()
    usage.record(finished_request())
    usage.build_rows()
    [kept] = journaled(tmp_path / "journal")  # in the writer's memory, and on disk
    assert usage.writer.depth == 1
    await usage.close()
    assert usage.store.rows == [kept]
    assert list((tmp_path / "journal").iterdir()) == []


async def test_once_the_writer_has_written_the_rows_the_journal_is_emptied(tmp_path):
    settings = Settings(_env_file=None, spool_dir=tmp_path, usage_flush_interval_s=0.01)
    usage = UsageLog(settings, Store())  # type: ignore[arg-type]
    await usage.start()
    usage.record(finished_request())
    usage.build_rows()
    assert len(journaled(tmp_path / "journal")) == 1
    async with asyncio.timeout(10):
        while not usage.store.rows:
            await asyncio.sleep(0.005)
    assert journaled(tmp_path / "journal") == []  # told by the writer right after the write
    assert [p.stat().st_size for p in usage.journal.segments()] == [0]  # type: ignore[union-attr]
    await usage.close()


async def test_rows_journaled_but_not_yet_handed_to_the_writer_survive_its_progress(tmp_path):
    # A row waits up to BUILD_DELAY_S in the usage log before the writer gets it; the writer
    # settling everything it was given meanwhile must not erase that row from the journal.
    settings = Settings(_env_file=None, spool_dir=tmp_path, usage_flush_interval_s=3600)
    usage = UsageLog(settings, Store())  # type: ignore[arg-type]
    await usage.start()
    usage.record(finished_request())
    usage.build_rows()
    usage.record(finished_request())  # journaled, still waiting for its group
    assert usage.writer.depth == 1 and len(journaled(tmp_path / "journal")) == 2
    assert usage.writer.on_settled is not None
    usage.writer.on_settled(1, 1)  # what the writer reports once it wrote the row it was given
    assert len(journaled(tmp_path / "journal")) == 2  # the waiting row is still on disk
    await usage.close()
    assert len(usage.store.rows) >= 2


class DownStore(Store):
    async def insert(self, rows: list[bytes]) -> None:
        raise DatabaseUnavailable("down")


async def test_rows_neither_written_nor_spooled_stay_journaled_for_the_next_process(tmp_path):
    # The database down and the spool's disk full: the writer's batch is lost from memory,
    # so the journal must keep it (it used to be emptied once the batch counted as settled).
    settings = Settings(_env_file=None, spool_dir=tmp_path, usage_flush_interval_s=0.01)
    usage = UsageLog(settings, DownStore())  # type: ignore[arg-type]

    def disk_full(rows: list[bytes]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    usage.spool.append = disk_full  # type: ignore[method-assign]
    await usage.start()
    usage.record(finished_request())
    usage.build_rows()
    async with asyncio.timeout(10):
        while usage.writer.settled < 1:
            await asyncio.sleep(0.005)
    assert len(journaled(tmp_path / "journal")) == 1
    await usage.close()
    assert len(journaled(tmp_path / "journal")) == 1  # left, with its lock free, for a replay
    assert Journal(tmp_path / "journal").start(Spool(tmp_path / "next")) == 1


async def test_a_journal_can_be_switched_off(tmp_path):
    settings = Settings(_env_file=None, spool_dir=tmp_path, usage_journal=False)
    usage = UsageLog(settings, Store())  # type: ignore[arg-type]
    await usage.start()
    await usage.close()
    assert usage.journal is None and not (tmp_path / "journal").exists()


def test_replay_does_not_double_rows_already_committed(tmp_path):
    url = require_postgres()
    rows = [row() for _ in range(20)]
    kill_while_journaling(tmp_path / "spool" / "journal", rows)

    async def run() -> None:
        async with opened_store(url) as (db, store):
            await store.insert(rows[:12])  # committed before the kill; their segments remained
            settings = Settings(_env_file=None, spool_dir=tmp_path / "spool",
                                usage_flush_interval_s=3600)
            usage = UsageLog(settings, UsageStore(db))
            await usage.start()  # recovers into the spool; the writer replays it at once
            async with asyncio.timeout(30):
                while usage.spool.pending():
                    await asyncio.sleep(0.01)
            await usage.close()

    asyncio.run(run())
    counts = query(url, "SELECT id, count(*) AS n FROM request_logs GROUP BY id")
    assert {c["id"]: c["n"] for c in counts} == {row_id(r): 1 for r in rows}


# --- real gateways killed with SIGKILL -------------------------------------------------------

def killable_env(tmp_path: Path, mock_url: str) -> dict[str, str]:
    """A gateway on the test Postgres whose writer would hold rows for an hour."""
    return gateway_env(tmp_path, mock_url, DATABASE_URL=POSTGRES_URL,
                       GATEWAY_AUTO_MIGRATE="true", GATEWAY_USAGE_FLUSH_INTERVAL_S="3600",
                       GATEWAY_USAGE_BATCH_SIZE="100000")


def answered(gateway: GatewayProcess, count: int) -> list[str]:
    """Send `count` chat requests, stream and not, and return their request ids."""
    ids = []
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for i in range(count):
            response = client.post("/v1/chat/completions", headers={
                "x-portkey-provider": "openai", "authorization": "Bearer sk-test"},
                json={"model": "gpt-4o-mini", "stream": i % 2 == 1,
                      "messages": [{"role": "user", "content": f"request {i}"}]})
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-portkey-request-id"])
    return ids


def stored_ids() -> dict[str, int]:
    counts = query(POSTGRES_URL, "SELECT id, count(*) AS n FROM request_logs GROUP BY id")
    return {c["id"]: c["n"] for c in counts}


def recovered_in(output: str) -> int:
    return sum(int(n) for n in re.findall(r"usage journal: (\d+) rows of a dead process", output))


def test_rows_of_a_gateway_killed_with_sigkill_reach_postgres_after_its_restart(
        tmp_path, mock, mock_url):
    require_postgres()
    journal_dir = tmp_path / "spool" / "journal"
    gateway = GatewayProcess(killable_env(tmp_path, mock_url), cwd=tmp_path).start()
    try:
        ids = answered(gateway, 30)
        # The rows wait in the writer's memory (an hour's interval) and in the journal, which
        # the gateway writes just after each response went out: wait for that, not a time.
        assert wait_until(lambda: len(journaled(journal_dir)) == 30), gateway.output()
        assert stored_ids() == {}
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGKILL)
        assert gateway.process.wait(timeout=30) == -signal.SIGKILL
    finally:
        gateway.stop()
    restarted = GatewayProcess(killable_env(tmp_path, mock_url), cwd=tmp_path).start()
    try:
        assert wait_until(lambda: len(stored_ids()) >= 30, timeout=60), restarted.output()
        assert stored_ids() == {request_id: 1 for request_id in ids}
        assert recovered_in(restarted.output()) == 30
        assert restarted.stop() == 0, restarted.output()
    finally:
        restarted.stop()
    assert list(journal_dir.iterdir()) == [] and spooled(tmp_path / "spool") == []
    assert stored_ids() == {request_id: 1 for request_id in ids}


def test_workers_killed_with_sigkill_are_replaced_and_their_rows_replayed_once(
        tmp_path, mock, mock_url):
    require_postgres()
    journal_dir = tmp_path / "spool" / "journal"
    gateway = GatewayProcess(killable_env(tmp_path, mock_url), "--workers", "2",
                             cwd=tmp_path).start()
    try:
        assert wait_until(lambda: len(list(journal_dir.glob("*.lock"))) == 2, timeout=60)
        workers = {int(p.name.split("-")[1]) for p in journal_dir.glob("*.lock")}
        ids = answered(gateway, 40)
        assert wait_until(lambda: len(journaled(journal_dir)) == 40), gateway.output()
        assert stored_ids() == {}
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        # uvicorn starts two new workers; each claims what it can of the dead journals.
        assert wait_until(lambda: len(stored_ids()) >= 40, timeout=60), gateway.output()
        assert stored_ids() == {request_id: 1 for request_id in ids}
        assert recovered_in(gateway.output()) == 40  # no journal was replayed twice
        assert gateway.stop() == 0, gateway.output()
    finally:
        gateway.stop()
    assert list(journal_dir.iterdir()) == []
