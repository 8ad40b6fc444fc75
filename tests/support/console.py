"""Helpers for console tests: log in over plain HTTP, read CSRF tokens, insert usage rows."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.usage.table import request_logs
from tests.support.databases import ADMIN_TOKEN
from tests.support.servers import ThreadedServer

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


@contextlib.contextmanager
def console_client(gateway: ThreadedServer,
                   credential: str = ADMIN_TOKEN) -> Iterator[httpx.Client]:
    """An httpx client holding a logged-in console session."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        form = client.get("/console/login")
        assert form.status_code == 200, form.text
        response = client.post("/console/login", data={"token": credential,
                                                        "csrf": csrf_of(form.text)})
        assert response.status_code == 303, response.text
        yield client


def log_row(**fields: Any) -> dict[str, Any]:
    """A request_logs row with plausible defaults."""
    row: dict[str, Any] = {
        "id": uuid.uuid4().hex, "created_at": datetime.now(UTC), "trace_id": uuid.uuid4().hex,
        "api_key_id": None, "virtual_key_id": None, "config_id": None,
        "endpoint": "chat.completions", "provider": "openai", "model": "gpt-4o-mini",
        "stream": False, "status_code": 200, "error_type": None, "error_message": None,
        "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0, "total_tokens": 15,
        "tokens_estimated": False, "cost_usd": Decimal("0.00001"), "latency_ms": 120.0,
        "ttfb_ms": 80.0, "upstream_latency_ms": 100.0, "gateway_overhead_ms": 20.0,
        "retry_count": 0, "last_used_option": None, "cache_status": None, "metadata": None,
        "attempts": [{"path": "0", "provider": "openai", "status": 200, "latency_ms": 100.0,
                      "error": None}],
        "prompt_id": None, "prompt_version": None, "request_body": None, "response_body": None,
        "hook_results": None, "hooks_failed": None, "dialect": "chat",
    }
    row.update(fields)
    return row


async def insert_logs(database_url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(request_logs), rows)
    finally:
        await engine.dispose()
