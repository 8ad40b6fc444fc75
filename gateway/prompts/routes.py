"""`POST /v1/prompts/{id}/completions` and `/render`, mounted before the `/v1/*` passthrough."""

from __future__ import annotations

from dataclasses import replace

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.contracts.identity import Principal, StoredPrompt
from gateway.contracts.outcome import Outcome
from gateway.contracts.request import ParsedRequest
from gateway.errors import AuthenticationFailed, GatewayError
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.resolve import authenticate
from gateway.pipeline.routes import failed, read_request, serve, start_outcome
from gateway.pipeline.services import Services
from gateway.prompts.request import chat_body, parse_ref, route
from gateway.security.access import (
    ensure_config_allowed,
    ensure_virtual_key_allowed,
)
from providers.base import Endpoint


async def _prompt(request: Request, parsed: ParsedRequest, outcome: Outcome) -> StoredPrompt:
    """The caller's gateway API key first (a prompt is stored data), then the prompt."""
    services: Services = request.app.state.services
    outcome.principal = await authenticate(services.resolver, parsed)
    if outcome.principal is None:
        raise AuthenticationFailed("prompts can only be used with a gateway API key "
                                   "(x-portkey-api-key)", param="x-portkey-api-key",
                                   code="missing_api_key")
    ref, pin = parse_ref(request.path_params["ref"])
    prompt = await services.resolver.prompt(ref, pin)
    outcome.prompt_id, outcome.prompt_version = prompt.slug, prompt.version
    return prompt


async def _ensure_route_allowed(services: Services, principal: Principal | None,
                                prompt: StoredPrompt) -> None:
    """A render shows what the prompt would send: only to a key that may run it (its
    virtual key or saved config within the key's allow-lists), as a completion would check."""
    if prompt.virtual_key:
        ensure_virtual_key_allowed(principal,
                                   await services.resolver.virtual_key(prompt.virtual_key))
    if prompt.config:
        ensure_config_allowed(principal, prompt.config)


async def completions(request: Request) -> Response:
    parsed = await read_request(request, Endpoint.CHAT, "chat/completions")
    outcome = start_outcome(request, parsed)
    try:
        prompt = await _prompt(request, parsed, outcome)
        body = chat_body(prompt, parsed.body or {})
    except GatewayError as exc:
        return failed(request, outcome, exc, CHAT)
    rendered = replace(parsed, body=body, raw_body=orjson.dumps(body), **route(parsed, prompt))
    routed = start_outcome(request, rendered)
    routed.prompt_id, routed.prompt_version = outcome.prompt_id, outcome.prompt_version
    return await serve(request, rendered, outcome=routed)


async def render(request: Request) -> Response:
    """What a completion would send; it calls no upstream, so nothing is logged."""
    parsed = await read_request(request, Endpoint.CHAT, "chat/completions")
    services: Services = request.app.state.services
    outcome = Outcome(parsed)
    prompt = await _prompt(request, parsed, outcome)
    await _ensure_route_allowed(services, outcome.principal, prompt)
    body = chat_body(prompt, parsed.body or {})
    return Response(orjson.dumps({"success": True, "data": body}),
                    media_type="application/json")


routes = [
    Route("/v1/prompts/{ref}/completions", completions, methods=["POST"]),
    Route("/v1/prompts/{ref}/render", render, methods=["POST"]),
]
