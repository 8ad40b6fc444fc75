from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.mock_upstream import MockUpstream
from tests.support.redis import SharedRedis, open_shared_redis
from tests.support.servers import ThreadedServer

COMPAT_PROVIDERS = ("openai", "anyscale", "together-ai", "groq", "vllm")


@pytest.fixture(scope="session")
def mock_server() -> Iterator[tuple[MockUpstream, ThreadedServer]]:
    mock = MockUpstream()
    with ThreadedServer(mock.app()) as server:
        yield mock, server


@pytest.fixture
def mock(mock_server: tuple[MockUpstream, ThreadedServer]) -> MockUpstream:
    upstream, _ = mock_server
    upstream.reset()
    return upstream


@pytest.fixture
def mock_url(mock_server: tuple[MockUpstream, ThreadedServer]) -> str:
    return mock_server[1].url


def gateway_settings(tmp_path: Path, mock_url: str, **overrides: Any) -> Settings:
    """Settings for a test gateway: every compatible provider points at the mock upstream."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3",
        "spool_dir": tmp_path / "spool",
        "provider_base_urls": {slug: f"{mock_url}/v1" for slug in COMPAT_PROVIDERS},
        "vllm_url": f"{mock_url}/v1",
        # Loopback mocks stand in for public hosts: trust 127.0.0.1 on any port (the
        # production default trusts only the backend's exact origin).
        "trusted_hosts": "127.0.0.1",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def start_gateway(tmp_path: Path, mock_url: str) -> Iterator[Callable[..., ThreadedServer]]:
    started: list[ThreadedServer] = []

    def start(**overrides: Any) -> ThreadedServer:
        server = ThreadedServer(create_app(gateway_settings(tmp_path, mock_url, **overrides)))
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., ThreadedServer]) -> ThreadedServer:
    return start_gateway()


@pytest.fixture
def shared_redis() -> Iterator[SharedRedis]:
    """The test Redis (fails in CI, skips elsewhere when down), under a prefix of our own."""
    yield from open_shared_redis()
