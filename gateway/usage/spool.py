"""An append-only local file where usage rows wait while the database is unreachable.

Each line is one encoded row (codec.encode). Each process appends to its own file. Replay
claims a file by renaming it (atomic), so two workers never replay the same rows; rows are
replayed in the order they were written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from gateway.usage import codec

log = logging.getLogger("gateway.usage")
# Older versions wrote JSON lines, as usage-<pid>.jsonl; the patterns below match both.
_SUFFIX = ".rows"


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"usage-{os.getpid()}{_SUFFIX}"
        self.spooled = 0  # rows written to the spool by this process, for metrics

    def append(self, rows: list[bytes]) -> None:
        """Append encoded rows (codec.encode), one line each, and fsync."""
        if not rows:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            file.write(_lines(rows))
            file.flush()
            os.fsync(file.fileno())
        self.spooled += len(rows)

    def reject(self, rows: list[bytes]) -> None:
        """Keep rows the database refused, for an operator to inspect; never replayed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / f"rejected-{os.getpid()}{_SUFFIX}").open("ab") as file:
            file.write(_lines(rows))

    def pending(self) -> bool:
        return self.directory.is_dir() and (any(self.directory.glob("usage-*"))
                                            or any(self.directory.glob("replay-*")))

    def pending_rows(self) -> int:
        if not self.directory.is_dir():
            return 0
        files = [*self.directory.glob("usage-*"), *self.directory.glob("replay-*")]
        return sum(_count_lines(p) for p in files)

    def claim(self) -> list[Path]:
        """Take every spool file (this process's, and those of dead processes) for replay.

        Claimed files are named `replay-<pid>-<sequence>-...`, so a later claim never
        overwrites an earlier one and replay follows the order the rows were spooled in.
        """
        if not self.directory.is_dir():
            return []
        mine = f"replay-{os.getpid()}-"
        for path in sorted(self.directory.glob("usage-*"), key=_mtime):
            owner = path.stem.removeprefix("usage-")
            # A live worker may be appending to its own file: only it claims that one.
            if path == self.path or (owner.isdigit() and not _alive(int(owner))):
                _rename(path, path.with_name(f"{mine}{time.time_ns():020d}-{path.name}"))
        for path in self.directory.glob("replay-*"):
            owner, rest = path.name.split("-", 2)[1:]
            if not path.name.startswith(mine) and owner.isdigit() and not _alive(int(owner)):
                _rename(path, path.with_name(mine + rest))
        return sorted(self.directory.glob(mine + "*"))

    def read(self, path: Path) -> Iterator[bytes]:
        """The encoded rows of a claimed file, in order (lines of older versions upgraded).
        A line cut short by a crash mid-write is set aside with the rejected rows instead of
        stopping the replay."""
        with path.open("rb") as file:
            for line in file:
                if not line.strip():
                    continue
                try:
                    row = codec.upgrade(line)
                except ValueError:  # an older version's JSON line, cut short
                    row = line
                if codec.is_row(row):
                    yield row
                else:
                    log.error("usage spool: unreadable line in %s set aside", path.name)
                    self.reject([line.rstrip(b"\n")])


def _lines(rows: list[bytes]) -> bytes:
    return b"\n".join(rows) + b"\n"


def _rename(source: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # another worker claimed it first
        source.rename(target)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for _ in file)
    except FileNotFoundError:
        return 0
