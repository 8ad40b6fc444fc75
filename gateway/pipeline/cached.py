"""The cache around one leaf's attempt: answer from the cache, or attempt and keep it.

Only successful answers are kept: a JSON answer with status 200, or a stream that ran to its
end (assembled into the whole completion). A streaming request answered from the cache gets
the completion replayed as chunks ending with `[DONE]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson

from gateway.cache.keys import CACHEABLE, FORCE_REFRESH_HEADER, cache_key
from gateway.cache.replay import StreamAssembler, completion_to_chunks
from gateway.cache.stores import ResponseCache
from gateway.contracts.answer import Answer, JSONAnswer, StreamAnswer
from gateway.contracts.outcome import Outcome
from gateway.contracts.plan import Leaf
from gateway.contracts.request import ParsedRequest
from gateway.pipeline.attempt import check_destination
from gateway.pipeline.dialects.registry import NATIVE
from gateway.pipeline.prepare import Prepared
from gateway.pipeline.services import Services
from providers.base import Endpoint, StreamState

Attempter = Callable[[], Awaitable[Answer]]

_STREAMED = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS})
_COMPLETIONS = frozenset({"chat.completion", "text_completion"})


async def cached_attempt(services: Services, outcome: Outcome, leaf: Leaf, prepared: Prepared,
                         attempt: Attempter) -> Answer:
    """`attempt` runs the leaf (with its retries) when the cache cannot answer."""
    cache = services.cache
    policy = leaf.cache
    request = outcome.request
    if cache is None or policy is None or policy.mode != "simple" \
            or request.endpoint not in CACHEABLE:
        outcome.cache_status = "DISABLED"
        return await attempt()
    # The destination rules hold for a cache hit too: it answers as if from that host.
    await check_destination(services, leaf)
    key = cache_key(request, leaf, _keyed_body(request, prepared))
    refresh = FORCE_REFRESH_HEADER in request.headers
    if refresh:
        cache.refreshes += 1
    else:
        cached = await cache.get(key)
        answer = _from_cache(outcome, prepared, cached) if cached is not None else None
        if answer is not None:
            outcome.cache_status = "HIT"
            outcome.cost_usd = Decimal(0)
            outcome.answered_by, outcome.option_path = leaf.provider, leaf.path
            outcome.virtual_key, outcome.model = leaf.virtual_key, prepared.model
            return answer
    outcome.cache_status = "REFRESH" if refresh else "MISS"
    answer = await attempt()
    if isinstance(answer, JSONAnswer) and answer.status == 200:
        await cache.set(key, answer.content, policy.max_age)
    elif isinstance(answer, StreamAnswer) and answer.native:
        answer.rest = _keep_native(answer, answer.rest, request, cache, key, policy.max_age)
    elif isinstance(answer, StreamAnswer):
        answer.rest = _keep_when_complete(answer, answer.rest, cache, key, policy.max_age)
    return answer


def _keyed_body(request: ParsedRequest, prepared: Prepared) -> dict[str, Any] | None:
    """What the key hashes as the body. Another dialect's entries are its own (a native
    answer, or count_tokens, is no chat completion): its name, path and body sent."""
    if request.dialect == "chat":
        return prepared.body
    native = prepared.native is not None
    sent = (prepared.native if native else prepared.body) or {}
    # A streamed request and a plain one share their entry, as cache_key does for chat.
    body = {k: v for k, v in sent.items() if k not in ("stream", "stream_options")}
    return {"dialect": request.dialect, "path": request.path, "native": native, "body": body}


def _from_cache(outcome: Outcome, prepared: Prepared, cached: bytes) -> Answer | None:
    try:
        body = orjson.loads(cached)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    request = outcome.request
    if prepared.native is not None or (request.native_body is not None and "choices" not in body):
        return _native_from_cache(outcome, prepared, cached, body)
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    outcome.usage = usage
    if not (prepared.stream and outcome.request.endpoint in _STREAMED
            and body.get("object") in _COMPLETIONS):
        return JSONAnswer(200, cached, {})
    options = (outcome.request.body or {}).get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    chunks = completion_to_chunks(body, include_usage)
    # No upstream connection stands behind a replay; an empty response closes as one would.
    return StreamAnswer(first=chunks, rest=_nothing(), state=StreamState(usage=usage),
                        response=httpx.Response(200), headers={}, strip_usage=False)


def _native_from_cache(outcome: Outcome, prepared: Prepared, cached: bytes,
                       body: dict[str, Any]) -> Answer:
    """A native answer (or a local one, count_tokens) kept in the dialect's own shape."""
    request = outcome.request
    native = NATIVE[request.dialect]
    outcome.usage = native.usage(request.path, body)
    if not prepared.stream:
        return JSONAnswer(200, cached, {}, native=True)
    return StreamAnswer(first=native.replay(body), rest=_nothing(),
                        state=StreamState(usage=outcome.usage), response=httpx.Response(200),
                        headers={}, strip_usage=False, native=True)


async def _keep_native(answer: StreamAnswer, rest: AsyncIterator[dict[str, Any]],
                       request: ParsedRequest, cache: ResponseCache, key: str,
                       max_age: int | None) -> AsyncIterator[dict[str, Any]]:
    """Pass a native stream through; once it ends whole, store the answer it added up to."""
    watcher = NATIVE[request.dialect].stream(request.path)
    for event in answer.first:
        watcher.event(event)
    async for event in rest:
        watcher.event(event)
        yield event
    whole = watcher.result()
    if whole is not None:
        await cache.set(key, orjson.dumps(whole), max_age)


async def _nothing() -> AsyncIterator[dict[str, Any]]:
    return
    yield


async def _keep_when_complete(answer: StreamAnswer, rest: AsyncIterator[dict[str, Any]],
                              cache: ResponseCache, key: str,
                              max_age: int | None) -> AsyncIterator[dict[str, Any]]:
    """Pass the stream through; once it ends cleanly, store the completion it added up to."""
    assembler = StreamAssembler()
    for chunk in answer.first:
        assembler.feed(chunk)
    async for chunk in rest:
        assembler.feed(chunk)  # before the relay may strip the usage from it
        yield chunk
    body = assembler.result()
    if body is None:
        return
    if "usage" not in body and answer.state.usage:
        body["usage"] = answer.state.usage
    await cache.set(key, orjson.dumps(body), max_age)
