"""A crash-safe journal: a copy on local disk of the usage rows the writer holds in memory.

Each row handed to the writer is first appended to this process's journal, with one write()
to a file opened O_APPEND (no fsync). The kernel's page cache keeps what was written when the
process is killed (SIGKILL, the OOM killer), so a gateway started later on the same directory
finds the rows its predecessor had not yet committed, moves them into the spool before it
serves, and the writer replays them as it replays any spool: rows already in the database
are skipped, not doubled (store.UsageStore.insert). Surviving a power or node loss as well
needs every write flushed to the disk (`fsync=True`), at a cost per request that
bench.journal_cost measures.

A journal is a series of segment files `journal-<pid>-<token>-<n>.log` and a lock file
`journal-<pid>-<token>.lock` that its process holds (flock) for its whole life. The lock, not
the pid, tells a dead journal from a live one (a restarted container's gateway often gets its
predecessor's pid), and taking it claims the dead journal: two workers starting together
never replay the same one. A segment is closed once it holds `segment_bytes`, and deleted as
soon as the writer has settled (written, spooled or set aside) every row queued before it was
closed; whenever the writer has settled all it was given, the open segment is emptied.

A record is one line: the row's CRC-32 in eight hex digits, a space, the row (codec.encode: a
JSON array, which never holds a raw newline), a newline. A line cut short by a kill mid-write,
or whose checksum does not match, is skipped and counted; the lines around it read as usual.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import zlib
from collections import deque
from pathlib import Path

from gateway.settings import Settings
from gateway.usage.spool import Spool

log = logging.getLogger("gateway.usage")

SEGMENT_BYTES = 4 * 1024 * 1024  # ~6,000 rows; at most about two segments plus the queue's rows
_PREFIX = "journal-"
_SEGMENT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


def directory_for(settings: Settings) -> Path:
    """GATEWAY_USAGE_JOURNAL_DIR, else `journal` inside the spool directory (one volume)."""
    return settings.usage_journal_dir or settings.spool_dir / "journal"


def for_settings(settings: Settings) -> Journal | None:
    """The journal the settings ask for; None when it is off."""
    if not settings.usage_journal:
        return None
    return Journal(directory_for(settings), fsync=settings.usage_journal_fsync)


def encode(rows: list[bytes]) -> bytes:
    """The records of encoded rows, one line each."""
    return b"".join([b"%08x %s\n" % (zlib.crc32(row), row) for row in rows])


def decode(data: bytes) -> tuple[list[bytes], int]:
    """The rows of a segment's records, in order, and how many lines were torn or corrupt."""
    rows, bad = [], 0
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            whole = line[8:9] == b" " and int(line[:8], 16) == zlib.crc32(line[9:])
        except ValueError:  # not hex: a line cut inside its checksum
            whole = False
        if whole:
            rows.append(line[9:])
        else:
            bad += 1
    return rows, bad


class Journal:
    """One process's journal. The usage log calls `start` (lock, then recover the dead),
    `append` before each group of rows goes to the writer, and `close` after the writer;
    the writer reports its progress to `release`.

    Progress is counted in the writer's terms: `queued`, rows it ever took into its queue;
    `settled`, how many of those it has since written, spooled or set aside. Its queue is
    first in, first out, and the rows it spools instead of queueing are on disk before
    `submit_many` returns, so a segment closed when `queued` read Q holds nothing unsettled
    once `settled` reaches Q.
    """

    def __init__(self, directory: Path, *, fsync: bool = False,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.recovered = 0  # rows of dead journals moved to the spool, for the log and tests
        self._lock: int | None = None  # None: not started, or closed (append does nothing)
        self._fd: int | None = None  # the open segment
        self._segment = 0
        self._size = 0
        self._closed: deque[tuple[Path, int]] = deque()  # closed segments, by `queued` mark
        self._kept: list[Path] = []  # segments left for the next process (see `hold`)
        self._failing = False

    @property
    def lock_path(self) -> Path:
        return self.directory / f"{self.name}.lock"

    def segments(self) -> list[Path]:
        """This journal's segment files on disk, oldest first."""
        return sorted(self.directory.glob(f"{self.name}-*.log"))

    def start(self, spool: Spool) -> int:
        """Take this journal's lock, then move the rows of every dead process's journal in the
        directory into the spool; how many rows that was. Before the gateway serves. A
        directory that cannot be written is logged, and the gateway runs without a journal."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: never contended
        except OSError as exc:
            log.error("usage journal: cannot open %s (%s); rows held in memory are lost if "
                      "the process is killed", self.directory, type(exc).__name__)
            return 0
        self._lock = lock
        for path in sorted(self.directory.glob(f"{_PREFIX}*.lock")):
            if path != self.lock_path:
                self.recovered += self._recover(path, spool)
        return self.recovered

    def append(self, rows: list[bytes], queued: int) -> None:
        """Write rows about to be submitted to the writer, whose `queued` count is given (so
        far, without them). Never raises: a journal that cannot be written is logged, and the
        rows go on to the writer all the same."""
        if self._lock is None or not rows:
            return
        data = encode(rows)
        try:
            if self._fd is not None and self._size >= self.segment_bytes:
                self._close_segment(queued)
            if self._fd is None:
                self._open_segment()
            assert self._fd is not None
            _write_all(self._fd, data)
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as exc:  # a disk full, say; the next rows go to a fresh segment
            if not self._failing:
                log.error("usage journal: cannot write %s (%s); rows are not crash-safe until "
                          "it can", self.directory, type(exc).__name__)
            self._failing = True
            if self._fd is not None:
                self._close_segment(queued + len(rows))  # it may hold part of them
            return
        if self._failing:
            log.warning("usage journal: writing again")
            self._failing = False
        self._size += len(data)

    def hold(self) -> None:
        """Keep every segment written so far for the next process to replay: some of their
        rows may have reached neither the database nor the spool (the spool unwritable when
        the queue or the writer needed it). Replay skips those already committed."""
        self._kept.extend(path for path, _ in self._closed)
        self._closed.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._kept.append(self._segment_path())

    def release(self, settled: int, queued: int) -> None:
        """The writer's progress: delete the segments whose rows are all settled, and empty
        the open one when every row the writer was given is. Never raises."""
        try:
            everything = settled >= queued
            while self._closed and (everything or self._closed[0][1] <= settled):
                self._closed.popleft()[0].unlink(missing_ok=True)
            if everything and self._size and self._fd is not None:
                os.ftruncate(self._fd, 0)  # O_APPEND: the next record goes at offset 0
                self._size = 0
        except OSError as exc:
            log.error("usage journal: cannot release settled rows (%s)", type(exc).__name__)

    def close(self, settled: int, queued: int) -> None:
        """After the writer has closed: delete what is settled, and the lock file if nothing is
        left; what is left (with the lock now free) is the next process's to replay."""
        if self._lock is None:
            return
        self.release(settled, queued)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if settled >= queued:
                self._segment_path().unlink(missing_ok=True)
        if not self._closed and not self._kept and not self.segments():
            self.lock_path.unlink(missing_ok=True)  # while still holding it
        os.close(self._lock)
        self._lock = None

    def _segment_path(self) -> Path:
        return self.directory / f"{self.name}-{self._segment:06d}.log"

    def _open_segment(self) -> None:
        self._segment += 1
        self._fd = os.open(self._segment_path(), _SEGMENT_FLAGS, 0o600)
        self._size = 0
        if self.fsync:  # the new file's name must survive a power loss too
            directory = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def _close_segment(self, mark: int) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        self._closed.append((self._segment_path(), mark))

    def _recover(self, lock_path: Path, spool: Spool) -> int:
        """Move a dead journal's rows into the spool and delete it; 0 if its process lives,
        another process claimed it first, or the spool cannot take them now."""
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # claimed and finished by another process
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive, or another one is replaying it
                return 0
            segments = sorted(lock_path.parent.glob(f"{lock_path.stem}-*.log"))
            rows, bad = [], 0
            for segment in segments:
                found, torn = decode(segment.read_bytes())
                rows += found
                bad += torn
            spool.append(rows)  # fsync'd: from here on the spool's replay owns them
            for segment in segments:
                segment.unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)  # last, and still holding the lock
        except OSError as exc:  # left for a later start
            log.error("usage journal: cannot recover %s (%s)", lock_path.name,
                      type(exc).__name__)
            return 0
        finally:
            os.close(fd)
        if rows or bad:
            log.warning("usage journal: %d rows of a dead process (%s) queued for the database"
                        "%s", len(rows), lock_path.stem,
                        f"; {bad} torn or corrupt records skipped" if bad else "")
        return len(rows)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # a regular file takes it all, short of a full disk or a signal
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]
