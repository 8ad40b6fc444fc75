"""Redis for tests: the shared server (a db and key prefix of our own), or a private
`redis-server` process that a test may kill and restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import redis

from tests.support.servers import free_port
from tests.support.tcp_relay import TcpRelay


@dataclass(frozen=True)
class SharedRedis:
    url: str
    prefix: str  # every key a test's gateway writes starts with it

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def keys(self) -> list[bytes]:
        with self.client() as client:
            return list(client.scan_iter(match=self.prefix + "*", count=1000))


def unavailable(reason: str) -> None:
    """Fail in CI, where Redis must be there; skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Redis is required in CI: {reason}")
    pytest.skip(f"Redis unavailable: {reason}")


def open_shared_redis() -> Iterator[SharedRedis]:
    url = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        unavailable(str(exc))
    store = SharedRedis(url, f"test-{uuid.uuid4().hex[:12]}:")
    yield store
    with store.client() as client:
        keys = store.keys()
        if keys:
            client.delete(*keys)


class RedisProcess:
    """A private, diskless redis-server on a fixed port, to stop and start at will."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.prefix = f"test-{uuid.uuid4().hex[:12]}:"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                    client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()


class RedisCut(TcpRelay):
    """A cuttable relay to the shared Redis, where no redis-server binary is installed to run
    a private one."""

    def __init__(self, shared: SharedRedis) -> None:
        parts = urlsplit(shared.url)
        super().__init__((parts.hostname or "127.0.0.1", parts.port or 6379))
        self.db = parts.path or "/0"
        self.prefix = shared.prefix

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.db}"


def redis_to_cut(request: pytest.FixtureRequest) -> RedisProcess | RedisCut:
    """A private redis-server when one is installed, else a cuttable relay to the shared one."""
    binary = shutil.which("redis-server")
    if binary:
        return RedisProcess(binary).start()
    return RedisCut(request.getfixturevalue("shared_redis")).start()
