"""The `/v1/*` routes: one request, one direction through the stages.

    read + decode (dialect) → parse → resolve → plan → admit → execute → relay → record

Each stage is a module of this package (plus `routing/plan.py`); this one only calls them
in order. An error after parsing is recorded like any finished request and answered in the
client's dialect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive

from gateway.contracts.answer import Answer
from gateway.contracts.identity import Principal
from gateway.contracts.outcome import Outcome
from gateway.contracts.plan import Leaf, Node
from gateway.contracts.request import ParsedRequest
from gateway.errors import ClientDisconnected, GatewayError, ServiceUnavailable
from gateway.limits import api_key_scope, virtual_key_scope
from gateway.pipeline.dialects import Dialect
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.dialects.messages import COUNT_TOKENS, COUNT_TOKENS_DIALECT, MESSAGES
from gateway.pipeline.dialects.responses import ResponsesTurn
from gateway.pipeline.execute import execute
from gateway.pipeline.parse import parse_request
from gateway.pipeline.relay import to_response
from gateway.pipeline.resolve import UNSET, Unset, authenticate, resolve
from gateway.pipeline.services import Services
from gateway.pipeline.stored_responses import routes as stored_response_routes
from gateway.pipeline.stored_responses import when_stored, with_history
from gateway.routing.plan import build_plan, header_leaf
from gateway.server.bodies import read_body
from gateway.server.error_response import error_response
from gateway.server.ids import request_ids
from providers.base import Endpoint

# How long an answer may take before its client's disconnect is watched: upstream calls that
# matter (LLM answers, retries with their backoff) take longer; under load (c=50) most answers
# take tens of milliseconds, and a watcher task for each cost 6% of the CPU per request.
WATCH_AFTER_S = 0.25


async def read_request(request: Request, endpoint: Endpoint, path: str,
                       dialect: Dialect = CHAT) -> ParsedRequest:
    """Read the body (within the size limit), decode it from the client's dialect, parse."""
    services: Services = request.app.state.services
    request_id, trace_id = request_ids(request)
    raw = b"" if request.method in ("GET", "HEAD") else await read_body(
        request, services.settings.max_body_bytes)
    decoded = dialect.decode(endpoint, raw)
    return parse_request(endpoint=endpoint, method=request.method, path=path,
                         query=request.scope["query_string"].decode("latin-1"),
                         headers=request.headers, raw_body=raw, body=decoded.body,
                         native_body=decoded.native, native_only=decoded.native_only,
                         dialect=dialect.name,
                         request_id=request_id, trace_id=trace_id)


def response_headers(outcome: Outcome) -> dict[str, str]:
    headers = {
        "x-portkey-request-id": outcome.request.request_id,
        "x-portkey-trace-id": outcome.request.trace_id,
        "x-portkey-retry-attempt-count": str(outcome.retry_count),
    }
    if outcome.answered_by:
        headers["x-portkey-provider"] = outcome.answered_by
    if outcome.option_path:
        headers["x-portkey-last-used-option-index"] = outcome.option_path
    headers["x-portkey-cache-status"] = outcome.cache_status or "DISABLED"
    return headers


def start_outcome(request: Request, parsed: ParsedRequest) -> Outcome:
    outcome = Outcome(parsed)
    request.state.outcome = outcome  # the trace middleware describes the request by it
    return outcome


async def serve(request: Request, parsed: ParsedRequest, dialect: Dialect = CHAT, *,
                outcome: Outcome | None = None,
                principal: Principal | None | Unset = UNSET) -> Response:
    """Resolve, plan, admit, execute and relay a parsed request; record how it ended.
    `principal`: the caller, when the route authenticated it already."""
    services: Services = request.app.state.services
    outcome = outcome or start_outcome(request, parsed)
    try:
        resolved = await resolve(services.resolver, services.configs, parsed, principal)
        outcome.principal, outcome.config_id = resolved.principal, resolved.config_id
        plan = build_plan(parsed, resolved.config, saved=resolved.saved,
                          virtual_keys=resolved.virtual_keys)
        await admit(services, outcome, plan)
        answer = await while_connected(request.receive, execute(services, outcome, plan))
    except GatewayError as exc:
        return failed(request, outcome, exc, dialect)
    return to_response(answer, outcome, response_headers(outcome), services.record, dialect)


def failed(request: Request, outcome: Outcome, exc: GatewayError, dialect: Dialect) -> Response:
    """Record a request that ended in `exc`, and answer it in the client's dialect."""
    outcome.failed(exc.status, exc.type, exc.message)
    headers = {"x-portkey-retry-attempt-count": str(outcome.retry_count)}
    provider = exc.provider or outcome.answered_by
    if provider:
        headers["x-portkey-provider"] = provider
    if outcome.option_path:
        headers["x-portkey-last-used-option-index"] = outcome.option_path
    services: Services = request.app.state.services
    services.record(outcome)
    return error_response(request, exc, headers, dialect.error_body(exc))


async def admit(services: Services, outcome: Outcome, plan: Node) -> None:
    """429 when the caller's API key (and a single-target plan's virtual key) is over a
    limit; else hold what the request uses until it is recorded. A virtual key deeper in
    the plan is admitted when its target is about to run (execute.py)."""
    if services.limiter is None:
        return
    scopes = [api_key_scope(outcome.principal)] if outcome.principal is not None else []
    if isinstance(plan, Leaf) and plan.virtual_key is not None:
        scopes.append(virtual_key_scope(plan.virtual_key))
    await services.limiter.admit(outcome, scopes)


async def while_connected(receive: Receive, work: Awaitable[Answer]) -> Answer:
    """Await `work` (the upstream calls, retries and their backoff) in this task, and cancel
    it the moment the client disconnects: nobody is left to answer, so no upstream call or
    retry goes on, and the request is logged with status 499. The body has been read by
    now, so the receive channel's next message is the disconnect.

    The watcher is one task, started only once the work has taken WATCH_AFTER_S: it costs
    about 12 µs, which a fast answer should not pay for; a client that leaves a faster answer
    costs at most that much upstream work.
    A stream's relay watches on its own once the answer is here."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    left = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        left = True
        task.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(WATCH_AFTER_S, start_watching)
    try:
        return await work
    except asyncio.CancelledError:
        if not left:
            raise  # cancelled from outside (shutdown): not ours to swallow
        task.uncancel()
        raise ClientDisconnected("the client closed the connection before the answer came",
                                 code="client_disconnect") from None
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()


async def chat_completions(request: Request) -> Response:
    return await serve(request, await read_request(request, Endpoint.CHAT, "chat/completions"))


async def completions(request: Request) -> Response:
    return await serve(request, await read_request(request, Endpoint.COMPLETIONS, "completions"))


async def embeddings(request: Request) -> Response:
    return await serve(request, await read_request(request, Endpoint.EMBEDDINGS, "embeddings"))


async def responses(request: Request) -> Response:
    """OpenAI Responses, translated: the history of a previous_response_id goes before the
    input; a stored response is kept under the id the client saw (stored_responses.py)."""
    turn = ResponsesTurn()
    parsed = await read_request(request, Endpoint.CHAT, "responses", turn)
    services: Services = request.app.state.services
    try:
        parsed, principal = await with_history(services, parsed, turn)
    except GatewayError as exc:
        return failed(request, start_outcome(request, parsed), exc, turn)
    response = await serve(request, parsed, turn, principal=principal)
    return await when_stored(turn, response, request.state.outcome)


async def messages(request: Request) -> Response:
    """Anthropic's Messages API (Claude Code sends `?beta=true`): native to targets that
    speak it, translated for the others (dialects/messages.py)."""
    return await _in_dialect(request, "messages", MESSAGES)


async def count_tokens(request: Request) -> Response:
    """Native to Anthropic; estimated by the gateway for targets without it."""
    return await _in_dialect(request, COUNT_TOKENS, COUNT_TOKENS_DIALECT)


async def _in_dialect(request: Request, path: str, dialect: Dialect) -> Response:
    """A request whose body errors, too, answer in the client's dialect."""
    try:
        parsed = await read_request(request, Endpoint.CHAT, path, dialect)
    except GatewayError as exc:
        return error_response(request, exc, body=dialect.error_body(exc))
    return await serve(request, parsed, dialect)


async def root(request: Request) -> Response:
    """`GET`/`HEAD /`: Claude Code's connectivity check before its first request."""
    return JSONResponse({"status": "ok"})


async def models(request: Request) -> Response:
    parsed = await read_request(request, Endpoint.MODELS, "models")
    if parsed.provider or parsed.has_config or parsed.virtual_key:
        # An upstream call like any other: limits apply.
        return await serve(request, parsed)
    # No provider named: the bundled backend's models, to callers the gateway admits.
    services: Services = request.app.state.services
    outcome = start_outcome(request, parsed)
    try:
        outcome.principal = await authenticate(services.resolver, parsed)
        answer = await execute(services, outcome, header_leaf(parsed, provider="vllm"))
    except GatewayError as exc:
        if exc.status < 500:
            return failed(request, outcome, exc, CHAT)
        return failed(request, outcome, _backend_down(services, exc), CHAT)
    return to_response(answer, outcome, response_headers(outcome), services.record, CHAT)


def _backend_down(services: Services, exc: GatewayError) -> GatewayError:
    url = services.settings.vllm_url
    error = ServiceUnavailable(
        f"no provider was named, so the gateway lists the models of its bundled vLLM backend "
        f"at {url}, which did not answer ({exc.message}). Start the backend or check "
        "GATEWAY_VLLM_URL, or name a provider (x-portkey-provider, x-portkey-virtual-key or "
        "x-portkey-config) to list its models", code="backend_unavailable", provider="vllm")
    error.extra["data"] = []
    return error


async def passthrough(request: Request) -> Response:
    return await serve(request, await read_request(request, Endpoint.PROXY,
                                                   request.path_params["path"]))


# Mounted first: the busiest paths should not be matched against every admin route, and the
# three dialects' come first of all (Starlette tries each route's pattern in turn).
routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/responses", responses, methods=["POST"]),
    Route("/v1/messages", messages, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    Route("/", root, methods=["GET", "HEAD"]),
    *stored_response_routes,
]
# Mounted last: any other /v1 path that no admin or prompt route claimed.
passthrough_routes = [
    Route("/v1/{path:path}", passthrough,
          methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
]
