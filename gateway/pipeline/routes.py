"""The `/v1/*` routes: parse, resolve, plan, attempt, relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from gateway.contracts.request import RequestContext, parse_request
from gateway.errors import ClientDisconnected, GatewayError
from gateway.limits import admit
from gateway.pipeline.attempt import Answer, JSONAnswer
from gateway.pipeline.execute import execute
from gateway.pipeline.relay import to_response
from gateway.routing.plan import authenticate, build_plan, header_leaf
from gateway.server.bodies import read_body
from gateway.server.ids import request_ids
from gateway.services import Services
from providers.base import Endpoint

# How long an answer may take before its client's disconnect is watched: upstream calls that
# matter (LLM answers, retries with their backoff) take longer; under load (c=50) most answers
# take tens of milliseconds, and a watcher task for each cost 6% of the CPU per request.
WATCH_AFTER_S = 0.25
_EMPTY_MODEL_LIST = orjson.dumps({"object": "list", "data": []})


async def read_context(request: Request, endpoint: Endpoint, path: str) -> RequestContext:
    services: Services = request.app.state.services
    request_id, trace_id = request_ids(request)
    raw = b"" if request.method in ("GET", "HEAD") else await read_body(
        request, services.settings.max_body_bytes)
    ctx = parse_request(endpoint=endpoint, method=request.method, path=path,
                        query=request.scope["query_string"].decode("latin-1"),
                        headers=request.headers, raw_body=raw, request_id=request_id,
                        trace_id=trace_id)
    request.state.ctx = ctx
    return ctx


def response_headers(ctx: RequestContext) -> dict[str, str]:
    headers = {
        "x-portkey-request-id": ctx.request_id,
        "x-portkey-trace-id": ctx.trace_id,
        "x-portkey-retry-attempt-count": str(ctx.retry_count),
    }
    if ctx.answered_by:
        headers["x-portkey-provider"] = ctx.answered_by
    if ctx.option_path:
        headers["x-portkey-last-used-option-index"] = ctx.option_path
    headers["x-portkey-cache-status"] = ctx.cache_status or "DISABLED"
    return headers


async def _serve(request: Request, endpoint: Endpoint, path: str) -> Response:
    return await serve(request, await read_context(request, endpoint, path))


async def serve(request: Request, ctx: RequestContext) -> Response:
    """Plan, admit, execute and relay a parsed request (prompt completions enter here too)."""
    services: Services = request.app.state.services
    plan = await build_plan(services, ctx)
    await admit(services, ctx, plan)
    answer = await while_connected(request.receive, execute(services, ctx, plan))
    return to_response(answer, ctx, response_headers(ctx), services.record)


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
    return await _serve(request, Endpoint.CHAT, "chat/completions")


async def completions(request: Request) -> Response:
    return await _serve(request, Endpoint.COMPLETIONS, "completions")


async def embeddings(request: Request) -> Response:
    return await _serve(request, Endpoint.EMBEDDINGS, "embeddings")


async def models(request: Request) -> Response:
    services: Services = request.app.state.services
    ctx = await read_context(request, Endpoint.MODELS, "models")
    if ctx.provider or ctx.config or ctx.virtual_key:
        plan = await build_plan(services, ctx)
        await admit(services, ctx, plan)  # an upstream call like any other: limits apply
        answer = await execute(services, ctx, plan)
        return to_response(answer, ctx, response_headers(ctx), services.record)
    # No provider named: list the bundled backend's models, or none while it is down; to
    # callers the gateway admits, like every other /v1 route.
    await authenticate(services, ctx)
    with contextlib.suppress(GatewayError):
        answer = await execute(services, ctx, header_leaf(ctx, provider="vllm"))
        return to_response(answer, ctx, response_headers(ctx), services.record)
    ctx.status = 200
    return to_response(JSONAnswer(200, _EMPTY_MODEL_LIST, {}), ctx, response_headers(ctx),
                       services.record)


async def passthrough(request: Request) -> Response:
    return await _serve(request, Endpoint.PROXY, request.path_params["path"])


# Mounted first: the busiest paths should not be matched against every admin route.
routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
]
# Mounted last: any other /v1 path that no admin or prompt route claimed.
passthrough_routes = [
    Route("/v1/{path:path}", passthrough,
          methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
]
