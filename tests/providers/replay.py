"""Replay recorded fixtures through an adapter's pure functions, with no HTTP at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.net.sse import SSEDecoder
from providers import REGISTRY
from providers.base import Endpoint, SSEEvent, StreamState
from tests.support.eventstream_encode import encode_events

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = 1_750_000_000


def folder(slug: str, case: str) -> Path:
    return FIXTURES / slug / case


def case_json(slug: str, case: str) -> dict[str, Any]:
    return json.loads((folder(slug, case) / "case.json").read_text())


def events(slug: str, case: str) -> list[SSEEvent]:
    base = folder(slug, case)
    if (base / "stream.events.json").exists():  # an AWS event stream, already framed apart
        recorded = json.loads((base / "stream.events.json").read_text())
        assert encode_events(recorded) == (base / "stream.bin").read_bytes()
        return [SSEEvent(e["headers"].get(":event-type") or e["headers"][":exception-type"],
                         json.dumps(e["payload"])) for e in recorded]
    decoder = SSEDecoder()
    return decoder.feed((base / "stream.sse").read_text()) + decoder.close()


def stream_chunks(slug: str, case: str, model: str = "m") -> tuple[list[dict[str, Any]],
                                                                   StreamState]:
    adapter = REGISTRY[slug]
    state = StreamState(model=model, response_id="chatcmpl-req", created=NOW)
    chunks: list[dict[str, Any]] = []
    for event in events(slug, case):
        chunks.extend(adapter.translate_event(Endpoint.CHAT, event, state))
    chunks.extend(adapter.end_stream(Endpoint.CHAT, state))
    return chunks, state


def response(slug: str, case: str, model: str = "m") -> dict[str, Any]:
    body = json.loads((folder(slug, case) / "response.json").read_text())
    return REGISTRY[slug].translate_response(Endpoint.CHAT, body, now=NOW, request_id="req",
                                             model=model)


def tool_calls_of(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.get("id") or call["id"]
                call["name"] += delta.get("function", {}).get("name") or ""
                call["arguments"] += delta.get("function", {}).get("arguments") or ""
    return calls
