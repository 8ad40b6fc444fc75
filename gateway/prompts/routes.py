"""`POST /v1/prompts/{id}/completions` and `/render`, mounted before the `/v1/*` passthrough."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.contracts.identity import StoredPrompt
from gateway.contracts.request import RequestContext
from gateway.errors import AuthenticationFailed
from gateway.pipeline.routes import read_context, serve
from gateway.prompts.request import chat_body, parse_ref, route
from gateway.security.access import (
    ensure_config_allowed,
    ensure_inference,
    ensure_virtual_key_allowed,
)
from gateway.services import Services
from providers.base import Endpoint


async def _prompt(request: Request, ctx: RequestContext) -> StoredPrompt:
    """The caller's gateway API key first (a prompt is stored data), then the prompt."""
    services: Services = request.app.state.services
    ctx.principal = await services.resolver.authenticate(ctx.api_key)
    ensure_inference(ctx.principal)
    if ctx.principal is None:
        raise AuthenticationFailed("prompts can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key",
                                   code="missing_api_key")
    ref, pin = parse_ref(request.path_params["ref"])
    prompt = await services.resolver.prompt(ref, pin)
    ctx.prompt_id, ctx.prompt_version = prompt.slug, prompt.version
    return prompt


async def _ensure_route_allowed(services: Services, ctx: RequestContext,
                                prompt: StoredPrompt) -> None:
    """A render shows what the prompt would send: only to a key that may run it (its
    virtual key or saved config within the key's allow-lists), as a completion would check."""
    if prompt.virtual_key:
        ensure_virtual_key_allowed(ctx.principal,
                                   await services.resolver.virtual_key(prompt.virtual_key))
    if prompt.config:
        ensure_config_allowed(ctx.principal, prompt.config)


async def completions(request: Request) -> Response:
    ctx = await read_context(request, Endpoint.CHAT, "chat/completions")
    prompt = await _prompt(request, ctx)
    ctx.body = chat_body(prompt, ctx.body or {})
    ctx.raw_body = orjson.dumps(ctx.body)
    route(ctx, prompt)
    return await serve(request, ctx)


async def render(request: Request) -> Response:
    ctx = await read_context(request, Endpoint.CHAT, "chat/completions")
    request.state.ctx = None  # a render calls no upstream: there is nothing to log
    services: Services = request.app.state.services
    prompt = await _prompt(request, ctx)
    await _ensure_route_allowed(services, ctx, prompt)
    body = chat_body(prompt, ctx.body or {})
    return Response(orjson.dumps({"success": True, "data": body}),
                    media_type="application/json")


routes = [
    Route("/v1/prompts/{ref}/completions", completions, methods=["POST"]),
    Route("/v1/prompts/{ref}/render", render, methods=["POST"]),
]
