"""Outbound calls of the webhook and log checks: SSRF-guarded, time-bound, size-capped.

Every URL passes the gateway's SSRF guard (HostGuard.check) before any connection, and the
connection goes to the addresses it checked (the pin); the shared upstream client sends it,
without redirects or cookies. The whole call, connect to last byte, is bound by the check's
`timeout` (Portkey's default 3 s, at most MAX_TIMEOUT_MS), and an answer is read up to
MAX_ANSWER_BYTES. Whatever goes wrong becomes an `OutboundError`, which the check reports
as its error: a webhook that is down or slow costs at most its timeout, never a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from gateway.errors import GatewayError
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import map_httpx_errors, read_body

DEFAULT_TIMEOUT_MS = 3000
MAX_TIMEOUT_MS = 30_000
MAX_ANSWER_BYTES = 1 << 20


class OutboundError(Exception):
    """An outbound call that failed: refused, unreachable, timed out, non-2xx, not JSON."""

    def __init__(self, message: str, name: str = "Error", answer: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.answer = answer  # a non-2xx answer's JSON body, if it had one


def shown(url: str) -> str:
    """The URL as results show it: its origin, and "/…" for a path. The path, query,
    fragment and credentials may hold secrets (Slack- and Discord-style hook URLs carry their
    token in the path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    host = f"[{host}]" if ":" in host else host
    path = "/…" if parts.path.strip("/") else ""
    return f"{parts.scheme}://{host}{port}{path}"


@dataclass(frozen=True, slots=True)
class Outbound:
    http: httpx.AsyncClient
    guard: HostGuard
    max_answer_bytes: int = MAX_ANSWER_BYTES

    async def post(self, url: str, payload: Mapping[str, Any], headers: Mapping[str, str],
                   timeout_ms: int, *, want_json: bool = True) -> Any:
        """POST `payload` as JSON; the answer's JSON (None without `want_json`)."""
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                return await self._post(url, payload, headers, want_json)
        except TimeoutError:
            raise OutboundError(f"Request timed out after {timeout_ms}ms",
                                "TimeoutError") from None

    async def _post(self, url: str, payload: Mapping[str, Any], headers: Mapping[str, str],
                    want_json: bool) -> Any:
        try:
            await self.guard.check(url)
        except GatewayError as exc:
            reason = exc.message.removeprefix("custom host refused: ")
            raise OutboundError(f"URL refused by the SSRF guard: {reason}") from None
        request = self.http.build_request(
            "POST", url, content=orjson.dumps(payload),
            headers={"content-type": "application/json", **headers})
        try:
            with map_httpx_errors("the hook's URL"):
                response = await self.http.send(request, stream=True)
            body = await read_body(response, self.max_answer_bytes, "the hook's URL")
        except GatewayError as exc:
            raise OutboundError(exc.message) from None
        if not 200 <= response.status_code < 300:
            raise OutboundError(f"HTTP error! status: {response.status_code}", "HttpError",
                                _json_or_none(response, body))
        if not want_json:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise OutboundError("the answer is not JSON") from None


def _json_or_none(response: httpx.Response, body: bytes) -> Any:
    if response.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
