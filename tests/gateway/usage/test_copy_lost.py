"""A COPY whose connection is lost while Postgres is not reading: the store gives up, as for
any outage, instead of waiting for the socket to drain for ever (asyncpg waits before each
slice of a COPY; the wait is never released once the connection is gone)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import asyncpg
import pytest
import uvloop

from gateway.usage import codec, store


def _message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


async def _busy_then_gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Just enough of Postgres: start-up, a COPY accepted, nothing read, then a reset."""
    size = struct.unpack("!i", await reader.readexactly(4))[0]
    await reader.readexactly(size - 4)
    writer.write(_message(b"R", struct.pack("!i", 0))
                 + _message(b"S", b"server_version\x0016.0\x00")
                 + _message(b"S", b"client_encoding\x00UTF8\x00")
                 + _message(b"S", b"integer_datetimes\x00on\x00")
                 + _message(b"K", struct.pack("!ii", 1, 2)) + _message(b"Z", b"I"))
    await reader.readexactly(1)  # the COPY statement
    size = struct.unpack("!i", await reader.readexactly(4))[0]
    await reader.readexactly(size - 4)
    writer.write(_message(b"G", b"\x00" + struct.pack("!h", 0)))  # CopyInResponse
    await writer.drain()
    await asyncio.sleep(0.3)  # a busy backend: the gateway's socket buffer fills
    connection = writer.get_extra_info("socket")
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # the database restarts: a reset


async def _copy_to_a_lost_database() -> tuple[BaseException, float]:
    server = await asyncio.start_server(_busy_then_gone, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    driver = await asyncpg.connect(host="127.0.0.1", port=port, user="gateway",
                                   database="gateway", ssl=False)
    # 400 rows of 64 KB: more than the loopback socket buffers hold, in eight slices.
    rows = [codec.encode({"id": f"r{i}", "error_message": "x" * 65_536}) for i in range(400)]
    started = time.monotonic()
    try:
        with pytest.raises(BaseException) as failure:  # wait_for: a regression fails, not hangs
            copy = store._copy(driver, "request_logs", rows)
            await asyncio.wait_for(copy, 10)
        return failure.value, time.monotonic() - started
    finally:
        driver.terminate()
        server.close()


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_copy_whose_connection_is_lost_fails_as_an_outage(run, monkeypatch):
    monkeypatch.setattr(store, "COPY_TIMEOUT_S", 2.0)
    error, seconds = run(_copy_to_a_lost_database())
    # What UsageStore.insert turns into DatabaseUnavailable: the batch is spooled, not lost,
    # and not set aside as refused. asyncio times the COPY out (TimeoutError); on uvloop the
    # timeout's cancellation meets asyncpg's write to the closed socket (ConnectionError).
    assert isinstance(error, (TimeoutError, ConnectionError)), repr(error)
    # The COPY did wait on the drained socket (else this would not test the wait's bound).
    assert 1.8 <= seconds < 5
