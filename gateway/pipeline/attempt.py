"""Attempt: send one leaf's request upstream, once, and hand back what it answered.

A stream counts as answered only when its first translated chunk has arrived, so an error
status, a dropped connection, a timeout or an error event before that can still be retried
or fall back to another target.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import httpx
import orjson

from gateway.contracts.answer import Answer, JSONAnswer, RawAnswer, StreamAnswer, answer_status
from gateway.contracts.outcome import Attempt, Outcome
from gateway.contracts.plan import Leaf
from gateway.contracts.request import CREDENTIAL_HEADERS, HOP_BY_HOP, PREFIX, ParsedRequest
from gateway.errors import (
    AdapterError,
    GatewayError,
    InvalidRequest,
    RequestTimeout,
    UpstreamMalformed,
    UpstreamStatus,
    UpstreamUnreachable,
)
from gateway.net.eventstream import decode_eventstream
from gateway.net.sse import decode_stream
from gateway.net.upstream import body_chunks, map_httpx_errors, read_body
from gateway.observability.otel import attempt_span
from gateway.pipeline.dialects.registry import NATIVE
from gateway.pipeline.prepare import Prepared
from gateway.pipeline.services import Services
from gateway.security.destinations import carries_stored_secret, check_client_host, check_options
from gateway.security.redaction import Secrets
from gateway.settings import Settings
from gateway.usage.tokens import completion_text
from providers import REGISTRY
from providers.base import (
    Adapter,
    ConfigurationError,
    Endpoint,
    SSEEvent,
    StreamCutOff,
    StreamError,
    StreamState,
    Target,
    UpstreamRequest,
)

log = logging.getLogger("gateway")
_T = TypeVar("_T")

# How each `adapter.stream_format` is read off the wire, no line, event or frame over `limit`.
_DECODERS: dict[str, Callable[[httpx.Response, int], AsyncIterator[SSEEvent]]] = {
    "sse": lambda response, limit: decode_stream(body_chunks(response), limit),
    "aws-eventstream": lambda response, limit: decode_eventstream(body_chunks(response), limit),
}

# Client headers read as the provider key (gateway/pipeline/parse.py).
_PROVIDER_KEY_HEADERS = frozenset({"authorization", "x-api-key"})
# Upstream response headers worth passing back to the client.
_PASSED_HEADER_PREFIXES = ("x-ratelimit-", "retry-after", "openai-", "anthropic-ratelimit-")


async def run_attempt(services: Services, outcome: Outcome, leaf: Leaf,
                      prepared: Prepared) -> Answer:
    """One upstream call for one leaf; raises a GatewayError on any failure."""
    outcome.virtual_key = leaf.virtual_key
    outcome.model = prepared.model
    record = Attempt(path=leaf.path, provider=leaf.provider)
    outcome.attempts.append(record)
    with attempt_span(services.telemetry, leaf, outcome.attempts):
        return await _recorded(services, outcome, leaf, prepared, record)


async def _recorded(services: Services, outcome: Outcome, leaf: Leaf, prepared: Prepared,
                    record: Attempt) -> Answer:
    adapter = REGISTRY[leaf.provider]
    started = time.perf_counter()
    try:
        answer = await _with_timeout(services, outcome, leaf, adapter, prepared)
        record.status = answer_status(answer)
        return answer
    except GatewayError as exc:
        # Upstream text enters here: known secrets go before anyone reads the message.
        _secrets(services, outcome.request, leaf).scrub(exc)
        record.status = exc.status
        record.error = exc.message
        raise
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        outcome.upstream_ms += record.latency_ms


def _secrets(services: Services, request: ParsedRequest, leaf: Leaf) -> Secrets:
    return Secrets(services.settings, request, leaf, services.tokens.minted)


async def _with_timeout(services: Services, outcome: Outcome, leaf: Leaf, adapter: Adapter,
                        prepared: Prepared) -> Answer:
    timeout_ms = outcome.request.request_timeout_ms or leaf.request_timeout_ms \
        or services.settings.request_timeout_ms or None
    if timeout_ms is None:
        return await _send(services, outcome, leaf, adapter, prepared)
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            return await _send(services, outcome, leaf, adapter, prepared)
    except TimeoutError:
        raise RequestTimeout(
            f"request exceeded the timeout of {timeout_ms}ms set for it", provider=leaf.provider,
            code="request_timeout") from None


async def _send(services: Services, outcome: Outcome, leaf: Leaf, adapter: Adapter,
                prepared: Prepared) -> Answer:
    request = outcome.request
    if prepared.native is None and request.native_body is not None:
        # A dialect's request that only its own providers serve (count_tokens) is answered
        # here for the others: no upstream call, nothing billed.
        local = await NATIVE[request.dialect].local_answer(request.path, prepared.body or {})
        if local is not None:
            outcome.usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            return JSONAnswer(200, local, {}, native=True)
    target = await build_target(services, leaf)
    upstream = _build(request, prepared, adapter, target)
    headers = _forwarded(request, leaf, upstream.headers) | upstream.headers
    try:
        with map_httpx_errors(leaf.provider):
            response = await services.http.send_direct(upstream.method, upstream.url, headers,
                                                       upstream.body)
    except UpstreamUnreachable as exc:
        exc.message += f" (the URL comes from {_url_source(services.settings, leaf)})"
        exc.args = (exc.message,)
        raise
    try:
        if response.status_code >= 400:
            await _raise_upstream_error(response, adapter, leaf.provider,
                                        services.settings.max_upstream_error_bytes)
        passed = _passed_headers(response)
        if request.endpoint is Endpoint.PROXY:
            return RawAnswer(response, passed)
        if prepared.native is not None:
            return await _read_native(outcome, prepared, adapter, response, passed,
                                      _secrets(services, request, leaf), services.settings)
        if prepared.stream:
            return await _open_stream(outcome, prepared, adapter, response, passed,
                                      _secrets(services, request, leaf),
                                      services.settings.max_upstream_body_bytes)
        return await _read_json(outcome, prepared, adapter, response, passed,
                                services.settings)
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


async def build_target(services: Services, leaf: Leaf) -> Target:
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
    account_option = REGISTRY[leaf.provider].service_account_option
    if account_option and leaf.options.get(account_option):
        api_key = await services.tokens.bearer(
            leaf.options[account_option], option=account_option, provider=leaf.provider,
            http=services.http, guard=services.host_guard)
    return Target(leaf.provider, api_key, base_url, leaf.options, now=time.time())


def _url_source(settings: Settings, leaf: Leaf) -> str:
    """Where the unreachable URL was set, so the 502 names what to check."""
    if leaf.custom_host:
        return "the request's custom host (x-portkey-custom-host or custom_host in its config)"
    if leaf.base_url and leaf.virtual_key is not None and leaf.virtual_key.custom_host:
        return f"the custom host of virtual key '{leaf.virtual_key.slug}'"
    if leaf.base_url:
        return "the saved config's custom_host"
    if leaf.provider in settings.provider_base_urls:
        return "GATEWAY_PROVIDER_BASE_URLS"
    if leaf.provider in settings.base_urls:  # the one default URL: the bundled backend's
        return "GATEWAY_VLLM_URL (the bundled backend)"
    return f"{leaf.provider}'s public API address; check the gateway's network and DNS"


def _bundled_backend(leaf: Leaf) -> bool:
    """A target at the gateway's own default URL, not one a client or virtual key chose."""
    return not (leaf.custom_host or leaf.base_url or leaf.virtual_key)


def _build(request: ParsedRequest, prepared: Prepared, adapter: Adapter,
           target: Target) -> UpstreamRequest:
    """The adapter's upstream request. A target missing what its provider needs is the
    caller's 400; anything else an adapter raises is a bug in it: a 502 and a log line."""
    try:
        if request.endpoint is Endpoint.PROXY:
            url = adapter.proxy_url(request.path, target) + (
                f"?{request.query}" if request.query else "")
            # Authorization and x-api-key are read as the provider key (ParsedRequest):
            # the adapter sends the target's key in its provider's own header instead.
            headers = {k: v for k, v in request.headers.items()
                       if not k.startswith(PREFIX) and k not in HOP_BY_HOP
                       and k not in _PROVIDER_KEY_HEADERS}
            headers.update(adapter.auth_headers(target))
            return UpstreamRequest(request.method, url, headers, request.raw_body or None)
        if prepared.native is not None:
            names = NATIVE[request.dialect].headers
            return adapter.build_native(
                request.dialect, request.path, prepared.native, target, stream=prepared.stream,
                headers={n: request.headers[n] for n in names if n in request.headers})
        return adapter.build_request(request.endpoint, prepared.body or {}, target,
                                     stream=prepared.stream)
    except ConfigurationError as exc:
        raise InvalidRequest(str(exc), provider=adapter.slug) from None
    except Exception as exc:
        log.exception("adapter %s failed to build request %s", adapter.slug,
                      request.request_id)
        raise AdapterError(f"the {adapter.slug} adapter could not translate this request "
                           f"({type(exc).__name__}); this is a gateway bug, logged under "
                           f"request id {request.request_id}", provider=adapter.slug) from None


def _forwarded(request: ParsedRequest, leaf: Leaf, built: dict[str, str]) -> dict[str, str]:
    """Client headers the request or config asked to forward. Never one the adapter sets
    itself (in any letter case: it would ride beside the stored value), nor, to a leaf whose
    secret the gateway supplies, a credential that would contest it."""
    names = request.forward_headers if request.forward_headers is not None \
        else leaf.forward_headers
    if not names:
        return {}
    taken = {name.lower() for name in built}
    if carries_stored_secret(leaf):
        taken |= CREDENTIAL_HEADERS
    return {n: request.headers[n] for n in names
            if n in request.headers and n not in HOP_BY_HOP and n not in taken}


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


def _json_object(raw: bytes, slug: str) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamMalformed(f"{slug} returned a body that is not JSON",
                                provider=slug) from None
    if not isinstance(body, dict):
        raise UpstreamMalformed(f"{slug} returned JSON that is not an object", provider=slug)
    return body


async def _read_json(outcome: Outcome, prepared: Prepared, adapter: Adapter,
                     response: httpx.Response, headers: dict[str, str],
                     settings: Settings) -> JSONAnswer:
    raw = await read_body(response, settings.max_upstream_body_bytes, adapter.slug)
    body = _json_object(raw, adapter.slug)
    if adapter.rewrites_responses:
        request = outcome.request
        try:
            body = adapter.translate_response(request.endpoint, body, now=int(time.time()),
                                              request_id=request.request_id,
                                              model=prepared.model_name)
        except StreamError as exc:  # e.g. a 200 whose only content is a refusal
            raise UpstreamStatus(adapter.slug, exc.error) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamMalformed(f"{adapter.slug} returned a body that could not be read: "
                                    f"{exc}", provider=adapter.slug) from None
        raw = orjson.dumps(body)
    usage = body.get("usage")
    if isinstance(usage, dict):
        outcome.usage = usage
    else:
        outcome.completion.add(completion_text(body))
    if settings.log_bodies:
        outcome.response_body = raw.decode(errors="replace")
    return JSONAnswer(response.status_code, raw, headers)


async def _read_native(outcome: Outcome, prepared: Prepared, adapter: Adapter,
                       response: httpx.Response, headers: dict[str, str], secrets: Secrets,
                       settings: Settings) -> Answer:
    """A native target's answer, untranslated: read only for its usage (and, in a stream,
    its errors and its end), by the client's dialect (`NativeDialect`)."""
    request = outcome.request
    native = NATIVE[request.dialect]
    if prepared.stream:
        state = StreamState(model=prepared.model_name)
        events = _native_events(outcome, adapter, response, state, secrets,
                                settings.max_upstream_body_bytes)
        first: list[dict[str, Any]] = []
        with contextlib.suppress(StopAsyncIteration):
            first.append(await anext(events))
        return StreamAnswer(first, events, state, response, headers, strip_usage=False,
                            native=True)
    raw = await read_body(response, settings.max_upstream_body_bytes, adapter.slug)
    outcome.usage = native.usage(request.path, _json_object(raw, adapter.slug))
    if settings.log_bodies:
        outcome.response_body = raw.decode(errors="replace")
    return JSONAnswer(response.status_code, raw, headers, native=True)


async def _native_events(outcome: Outcome, adapter: Adapter, response: httpx.Response,
                         state: StreamState, secrets: Secrets,
                         limit: int) -> AsyncIterator[dict[str, Any]]:
    """The dialect's own events, as the provider sent them; the usage they report goes on
    `state` (the relay bills it), their text on the outcome (for an estimate if cut)."""
    request = outcome.request
    dialect = request.dialect
    watcher = NATIVE[dialect].stream(request.path)
    try:
        with map_httpx_errors(adapter.slug):
            async for sse in _DECODERS[adapter.stream_format](response, limit):
                for event in _translate(adapter, adapter.native_events, dialect, sse):
                    outcome.completion.add(_step(adapter, watcher.event, event))
                    state.usage = watcher.usage
                    yield event
        _step(adapter, watcher.end)
    except GatewayError as exc:
        secrets.scrub(exc)
        raise


async def _open_stream(outcome: Outcome, prepared: Prepared, adapter: Adapter,
                       response: httpx.Response, headers: dict[str, str], secrets: Secrets,
                       limit: int) -> StreamAnswer:
    request = outcome.request
    state = StreamState(model=prepared.model_name,
                        response_id=f"chatcmpl-{request.request_id}", created=int(time.time()))
    chunks = _translated_chunks(request.endpoint, adapter, response, state, secrets, limit)
    first: list[dict[str, Any]] = []
    with contextlib.suppress(StopAsyncIteration):
        first.append(await anext(chunks))
    return StreamAnswer(first, chunks, state, response, headers, prepared.strip_usage)


async def _translated_chunks(endpoint: Endpoint, adapter: Adapter, response: httpx.Response,
                             state: StreamState, secrets: Secrets,
                             limit: int) -> AsyncIterator[dict[str, Any]]:
    """Chunks in OpenAI's shape; provider errors surface as GatewayErrors, redacted here
    (after the first chunk they reach the relay, not `run_attempt`)."""
    try:
        with map_httpx_errors(adapter.slug):
            async for event in _DECODERS[adapter.stream_format](response, limit):
                for chunk in _translate(adapter, adapter.translate_event, endpoint, event,
                                        state):
                    yield chunk
        # The adapter checks that the provider's end came.
        for chunk in _translate(adapter, adapter.end_stream, endpoint, state):
            yield chunk
    except GatewayError as exc:
        secrets.scrub(exc)
        raise


def _translate(adapter: Adapter, step: Callable[..., list[dict[str, Any]]],
               *args: Any) -> list[dict[str, Any]]:
    return _step(adapter, step, *args)


def _step(adapter: Adapter, step: Callable[..., _T], *args: Any) -> _T:
    """Run one step over an upstream's stream; its errors become gateway errors."""
    try:
        return step(*args)
    except StreamError as exc:
        raise UpstreamStatus(adapter.slug, exc.error) from None
    except StreamCutOff:
        raise UpstreamMalformed(f"{adapter.slug} ended the stream before it was complete",
                                provider=adapter.slug) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamMalformed(
            f"{adapter.slug} sent a stream event that could not be read: {exc}",
            provider=adapter.slug) from None
