"""Helpers for key-store tests: create keys through the admin API, call the gateway."""

from __future__ import annotations

from typing import Any

import httpx
import openai
from portkey_ai import createHeaders

from tests.support.databases import admin_client
from tests.support.servers import ThreadedServer

MESSAGES = [{"role": "user", "content": "hello"}]


def create_api_key(gateway: ThreadedServer, **fields: Any) -> str:
    with admin_client(gateway) as admin:
        response = admin.post("/admin/api-keys", json={"name": "test", **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def create_virtual_key(gateway: ThreadedServer, **fields: Any) -> dict[str, Any]:
    with admin_client(gateway) as admin:
        response = admin.post("/admin/virtual-keys",
                              json={"name": "anyscale prod", "provider": "anyscale", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def chat(gateway: ThreadedServer, **headers: str) -> httpx.Response:
    """A raw chat request with the given x-portkey-* headers (by suffix)."""
    sent = {f"x-portkey-{name.replace('_', '-')}": value for name, value in headers.items()}
    return httpx.post(f"{gateway.url}/v1/chat/completions", headers=sent, timeout=30,
                      json={"model": "m", "messages": MESSAGES})


def sdk_client(gateway: ThreadedServer, **headers: str) -> openai.OpenAI:
    """The OpenAI SDK with Portkey headers and no provider key of its own."""
    return openai.OpenAI(api_key="not-a-provider-key", base_url=f"{gateway.url}/v1",
                         default_headers=createHeaders(**headers), max_retries=0)
