"""Errors rendered as OpenAI envelopes, with the gateway's response headers."""

from __future__ import annotations

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError
from gateway.server.ids import request_ids

log = logging.getLogger("gateway")


def error_response(request: Request, exc: GatewayError, headers: dict[str, str] | None = None,
                   body: bytes | None = None) -> Response:
    """The error's response with the request and trace ids. `headers` and `body` come from
    the pipeline (routing headers; the error in the client's dialect); by default the body
    is the OpenAI error envelope. Rendering only: recording is the pipeline's."""
    request_id, trace_id = request_ids(request)
    all_headers = {"x-portkey-request-id": request_id, "x-portkey-trace-id": trace_id,
                   **(headers or {}), **exc.headers}
    if exc.status >= 500:
        log.warning("request %s failed: %s %s", request_id, exc.status, exc.type)
    return Response(orjson.dumps(exc.envelope()) if body is None else body, exc.status,
                    all_headers, media_type="application/json")
