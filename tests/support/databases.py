"""Databases for key-store tests: a fresh SQLite file, or the real Postgres with a clean schema.

Postgres comes from GATEWAY_TEST_DATABASE_URL (default: the CI database `test`). When it is
unreachable the test is skipped, or fails under CI=true.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.servers import ThreadedServer

POSTGRES_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL",
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def _query(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return [dict(row._mapping) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Raw SQL against a test database, from synchronous test code."""
    return asyncio.run(_query(url, sql, **params))


def _reachable(url: str) -> str | None:
    try:
        query(url, "SELECT 1")
    except Exception as exc:  # any failure to connect means "no Postgres here"
        return f"{type(exc).__name__}: {exc}"
    return None


def require_postgres() -> str:
    """The test Postgres URL, with a clean `public` schema; skip (or fail in CI) without it."""
    problem = _reachable(POSTGRES_URL)
    if problem is not None:
        message = f"Postgres at {POSTGRES_URL} unreachable: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    query(POSTGRES_URL, "DROP SCHEMA public CASCADE")
    query(POSTGRES_URL, "CREATE SCHEMA public")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/keys.sqlite3"
    return require_postgres()


@pytest.fixture
def master_key() -> str:
    return new_master_key()


@pytest.fixture
def keyed_gateway(start_gateway: Callable[..., ThreadedServer], database_url: str,
                  master_key: str) -> Callable[..., ThreadedServer]:
    """Start gateways on the test database with a master key and the admin token."""
    def start(**overrides: Any) -> ThreadedServer:
        values: dict[str, Any] = {"database_url": database_url, "master_key": master_key,
                                  "admin_token": ADMIN_TOKEN, "auto_migrate": True}
        values.update(overrides)
        return start_gateway(**values)
    return start


def admin_client(gateway: ThreadedServer, credential: str = ADMIN_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, timeout=30,
                        headers={"authorization": f"Bearer {credential}"})
