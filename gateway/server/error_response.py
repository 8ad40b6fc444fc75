"""Errors rendered as OpenAI envelopes, with the gateway's response headers."""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError
from gateway.server.ids import request_ids

log = logging.getLogger("gateway")


def error_response(request: Request, exc: GatewayError) -> Response:
    request_id, trace_id = request_ids(request)
    headers = {"x-portkey-request-id": request_id, "x-portkey-trace-id": trace_id, **exc.headers}
    ctx = getattr(request.state, "ctx", None)
    if ctx is not None:
        ctx.status = exc.status
        ctx.error_type = exc.type
        ctx.error_message = exc.message
        retry_count = ctx.retry_count
        headers["x-portkey-retry-attempt-count"] = str(retry_count)
        if exc.provider or ctx.answered_by:
            headers["x-portkey-provider"] = exc.provider or ctx.answered_by
        if ctx.option_path:
            headers["x-portkey-last-used-option-index"] = ctx.option_path
        request.app.state.services.record(ctx)
    if exc.status >= 500:
        log.warning("request %s failed: %s %s", request_id, exc.status, exc.type)
    return Response(orjson.dumps(exc.envelope()), exc.status, headers,
                    media_type="application/json")
