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
from gateway.pipeline.attempt import check_destination
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
    key = cache_key(request, leaf, prepared.body)
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
    elif isinstance(answer, StreamAnswer):
        answer.rest = _keep_when_complete(answer, answer.rest, cache, key, policy.max_age)
    return answer


def _from_cache(outcome: Outcome, prepared: Prepared, cached: bytes) -> Answer | None:
    try:
        body = orjson.loads(cached)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
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
