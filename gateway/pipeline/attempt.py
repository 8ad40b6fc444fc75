"""Attempt: send one leaf's request upstream, once, and hand back what it answered.

A stream counts as answered only when its first translated chunk has arrived, so an error
status, a dropped connection, a timeout or an error event before that can still be retried
or fall back to another target.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from gateway.contracts.plan import Leaf
from gateway.contracts.request import (
    CREDENTIAL_HEADERS,
    HOP_BY_HOP,
    PREFIX,
    Attempt,
    RequestContext,
)
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    RequestTimeout,
    UpstreamMalformed,
    UpstreamStatus,
)
from gateway.net.eventstream import decode_eventstream
from gateway.net.sse import decode_stream
from gateway.net.upstream import body_chunks, map_httpx_errors, read_body
from gateway.observability.otel import traced_attempt
from gateway.security.destinations import carries_stored_secret, check_client_host, check_options
from gateway.security.redaction import Secrets
from gateway.services import Services
from gateway.settings import Settings
from gateway.usage.tokens import completion_text
from providers import REGISTRY
from providers.base import (
    Adapter,
    ConfigurationError,
    Endpoint,
    SSEEvent,
    StreamError,
    StreamState,
    Target,
    UpstreamRequest,
)

# How each `adapter.stream_format` is read off the wire, no line, event or frame over `limit`.
_DECODERS: dict[str, Callable[[httpx.Response, int], AsyncIterator[SSEEvent]]] = {
    "sse": lambda response, limit: decode_stream(body_chunks(response), limit),
    "aws-eventstream": lambda response, limit: decode_eventstream(body_chunks(response), limit),
}

# Upstream response headers worth passing back to the client.
_PASSED_HEADER_PREFIXES = ("x-ratelimit-", "retry-after", "openai-", "anthropic-ratelimit-")


@dataclass(slots=True)
class JSONAnswer:
    status: int
    content: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class StreamAnswer:
    """An upstream stream whose first chunks are in hand; `rest` yields the others."""

    first: list[dict[str, Any]]
    rest: AsyncIterator[dict[str, Any]]
    state: StreamState
    response: httpx.Response
    headers: dict[str, str]
    strip_usage: bool  # the gateway asked for usage; the client did not


@dataclass(slots=True)
class RawAnswer:
    """A passthrough response relayed byte for byte."""

    response: httpx.Response
    headers: dict[str, str]


Answer = JSONAnswer | StreamAnswer | RawAnswer


@traced_attempt
async def run_attempt(services: Services, ctx: RequestContext, leaf: Leaf) -> Answer:
    """One upstream call for one leaf; raises a GatewayError on any failure."""
    adapter = REGISTRY[leaf.provider]
    record = Attempt(path=leaf.path, provider=leaf.provider)
    ctx.attempts.append(record)
    started = time.perf_counter()
    try:
        answer = await _with_timeout(services, ctx, leaf, adapter)
        record.status = _answer_status(answer)
        return answer
    except GatewayError as exc:
        # Upstream text enters here: known secrets go before anyone reads the message.
        Secrets(services.settings, ctx, leaf, services.tokens).scrub(exc)
        record.status = exc.status
        record.error = exc.message
        raise
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        ctx.upstream_ms += record.latency_ms


async def _with_timeout(services: Services, ctx: RequestContext, leaf: Leaf,
                        adapter: Adapter) -> Answer:
    timeout_ms = ctx.request_timeout_ms or leaf.request_timeout_ms \
        or services.settings.request_timeout_ms or None
    if timeout_ms is None:
        return await _send(services, ctx, leaf, adapter)
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            return await _send(services, ctx, leaf, adapter)
    except TimeoutError:
        raise RequestTimeout(
            f"request exceeded the timeout of {timeout_ms}ms set for it", provider=leaf.provider,
            code="request_timeout") from None


async def _send(services: Services, ctx: RequestContext, leaf: Leaf,
                adapter: Adapter) -> Answer:
    target = await build_target(services, ctx, leaf)
    try:
        request, strip_usage = _build(ctx, leaf, adapter, target)
    except ConfigurationError as exc:
        raise InvalidRequest(str(exc), provider=leaf.provider) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A body whose shape an adapter cannot translate (messages not a list, a tool
        # without a name) is the client's error, never a 500.
        raise InvalidRequest(f"the request cannot be translated for {leaf.provider}: "
                             f"{type(exc).__name__} {exc}", provider=leaf.provider) from None
    headers = _forwarded(ctx, leaf, request.headers) | request.headers
    with map_httpx_errors(leaf.provider):
        response = await services.http.send_direct(request.method, request.url, headers,
                                                   request.body)
    try:
        if response.status_code >= 400:
            await _raise_upstream_error(response, adapter, leaf.provider,
                                        services.settings.max_upstream_error_bytes)
        passed = _passed_headers(response)
        if ctx.endpoint is Endpoint.PROXY:
            return RawAnswer(response, passed)
        if ctx.stream and ctx.endpoint is not Endpoint.EMBEDDINGS:
            return await _open_stream(ctx, adapter, response, passed, strip_usage,
                                      Secrets(services.settings, ctx, leaf, services.tokens),
                                      services.settings.max_upstream_body_bytes)
        return await _read_json(ctx, adapter, response, passed, services.settings)
    except BaseException:
        await response.aclose()
        raise


async def check_destination(services: Services, leaf: Leaf) -> str | None:
    """The leaf's destination rules, before anything is sent or read from the cache: option
    values that would move the URL (400), a stored secret meeting a client's custom host
    (403), then the SSRF guard. Returns the client's custom host as the guard passed it."""
    if leaf.options:
        check_options(leaf.options)
    if not leaf.custom_host:
        return None
    check_client_host(leaf, leaf.custom_host)
    return await services.host_guard.check(leaf.custom_host)


async def build_target(services: Services, ctx: RequestContext, leaf: Leaf) -> Target:
    settings = services.settings
    api_key = leaf.api_key
    custom_host = await check_destination(services, leaf)
    if custom_host is not None:
        base_url: str | None = custom_host
    elif leaf.base_url:
        base_url = leaf.base_url
    else:  # gateway default keys go to the operator's URL for their provider only
        base_url = settings.base_urls.get(leaf.provider)
        api_key = api_key or settings.default_keys.get(leaf.provider)
    if _bundled_backend(leaf) and leaf.provider in settings.default_keys:
        # The operator's backend key wins over the client's Authorization: SDKs always send
        # one (a placeholder, or the gateway key), and clients are not meant to know it.
        api_key = settings.default_keys[leaf.provider]
    account_option = getattr(REGISTRY[leaf.provider], "service_account_option", None)
    if account_option and leaf.options.get(account_option):
        api_key = await services.tokens.bearer(
            leaf.options[account_option], option=account_option, provider=leaf.provider,
            http=services.http, guard=services.host_guard)
    return Target(leaf.provider, api_key, base_url, leaf.options, now=time.time())


def _bundled_backend(leaf: Leaf) -> bool:
    """A target at the gateway's own default URL, not one a client or virtual key chose."""
    return not (leaf.custom_host or leaf.base_url or leaf.virtual_key)


def _build(ctx: RequestContext, leaf: Leaf, adapter: Adapter,
           target: Target) -> tuple[UpstreamRequest, bool]:
    if ctx.endpoint is Endpoint.PROXY:
        url = adapter.proxy_url(ctx.path, target) + (f"?{ctx.query}" if ctx.query else "")
        headers = {k: v for k, v in ctx.headers.items()
                   if not k.startswith(PREFIX) and k not in HOP_BY_HOP and k != "authorization"}
        headers.update(adapter.auth_headers(target))
        return UpstreamRequest(ctx.method, url, headers, ctx.raw_body or None), False
    body = dict(ctx.body or {})
    body.update(leaf.override_params)
    ctx.model = body.get("model") if isinstance(body.get("model"), str) else None
    strip_usage = False
    if body.get("stream") and adapter.injects_stream_usage and ctx.endpoint in (
            Endpoint.CHAT, Endpoint.COMPLETIONS):
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        if not options.get("include_usage"):
            strip_usage = True
            body["stream_options"] = {**options, "include_usage": True}
    return adapter.build_request(ctx.endpoint, body, target, stream=ctx.stream), strip_usage


def _forwarded(ctx: RequestContext, leaf: Leaf, built: dict[str, str]) -> dict[str, str]:
    """Client headers the request or config asked to forward. Never one the adapter sets
    itself (in any letter case: it would ride beside the stored value), nor, to a leaf whose
    secret the gateway supplies, a credential that would contest it."""
    names = ctx.forward_headers if ctx.forward_headers is not None else leaf.forward_headers
    if not names:
        return {}
    taken = {name.lower() for name in built}
    if carries_stored_secret(leaf):
        taken |= CREDENTIAL_HEADERS
    return {n: ctx.headers[n] for n in names
            if n in ctx.headers and n not in HOP_BY_HOP and n not in taken}


def _passed_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith(_PASSED_HEADER_PREFIXES)}


async def _raise_upstream_error(response: httpx.Response, adapter: Adapter,
                                provider: str, limit: int) -> None:
    raw = await read_body(response, limit, provider, truncate=True)
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = raw.decode(errors="replace")
    error = adapter.translate_error(response.status_code, body)
    raise UpstreamStatus(provider, error, headers=_passed_headers(response))


async def _read_json(ctx: RequestContext, adapter: Adapter, response: httpx.Response,
                     headers: dict[str, str], settings: Settings) -> JSONAnswer:
    raw = await read_body(response, settings.max_upstream_body_bytes, adapter.slug)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamMalformed(f"{adapter.slug} returned a body that is not JSON",
                                provider=adapter.slug) from None
    if not isinstance(body, dict):
        raise UpstreamMalformed(f"{adapter.slug} returned JSON that is not an object",
                                provider=adapter.slug)
    if getattr(adapter, "rewrites_responses", True):
        try:
            body = adapter.translate_response(ctx.endpoint, body, now=int(time.time()),
                                              request_id=ctx.request_id, model=_model(ctx))
        except StreamError as exc:  # e.g. a 200 whose only content is a refusal
            raise UpstreamStatus(adapter.slug, exc.error) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamMalformed(f"{adapter.slug} returned a body that could not be read: "
                                    f"{exc}", provider=adapter.slug) from None
        raw = orjson.dumps(body)
    usage = body.get("usage")
    if isinstance(usage, dict):
        ctx.usage = usage
    else:
        ctx.completion.add(completion_text(body))
    if settings.log_bodies:
        ctx.response_body = raw.decode(errors="replace")
    return JSONAnswer(response.status_code, raw, headers)


async def _open_stream(ctx: RequestContext, adapter: Adapter, response: httpx.Response,
                       headers: dict[str, str], strip_usage: bool,
                       secrets: Secrets, limit: int) -> StreamAnswer:
    state = StreamState(model=_model(ctx), response_id=f"chatcmpl-{ctx.request_id}",
                        created=int(time.time()))
    chunks = _translated_chunks(ctx, adapter, response, state, secrets, limit)
    first: list[dict[str, Any]] = []
    with contextlib.suppress(StopAsyncIteration):
        first.append(await anext(chunks))
    return StreamAnswer(first, chunks, state, response, headers, strip_usage)


async def _translated_chunks(ctx: RequestContext, adapter: Adapter, response: httpx.Response,
                             state: StreamState, secrets: Secrets,
                             limit: int) -> AsyncIterator[dict[str, Any]]:
    """Chunks in OpenAI's shape; provider errors surface as GatewayErrors, redacted here
    (after the first chunk they reach the relay, not `run_attempt`)."""
    end_stream = getattr(adapter, "end_stream", None)
    try:
        with map_httpx_errors(adapter.slug):
            async for event in _DECODERS[adapter.stream_format](response, limit):
                for chunk in _translate(adapter, adapter.translate_event, ctx.endpoint, event,
                                        state):
                    yield chunk
        if end_stream is not None:  # the adapter checks that its end marker came
            for chunk in _translate(adapter, end_stream, ctx.endpoint, state):
                yield chunk
        elif not (state.completed or state.finish_reason):
            raise UpstreamMalformed(f"{adapter.slug} ended the stream before it was complete",
                                    provider=adapter.slug)
    except GatewayError as exc:
        secrets.scrub(exc)
        raise


def _translate(adapter: Adapter, step: Callable[..., list[dict[str, Any]]],
               *args: Any) -> list[dict[str, Any]]:
    """Run one adapter step; its errors become gateway errors."""
    try:
        return step(*args)
    except StreamError as exc:
        raise UpstreamStatus(adapter.slug, exc.error) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamMalformed(
            f"{adapter.slug} sent a stream event that could not be read: {exc}",
            provider=adapter.slug) from None


def _model(ctx: RequestContext) -> str:
    model = (ctx.body or {}).get("model")
    return model if isinstance(model, str) else ""


def _answer_status(answer: Answer) -> int:
    if isinstance(answer, JSONAnswer):
        return answer.status
    return answer.response.status_code
