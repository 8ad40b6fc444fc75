"""Stored OpenAI Responses on the request path: the history a `previous_response_id` names,
and `GET`/`DELETE /v1/responses/{id}` and its `input_items`.

The store (gateway/store/responses.py) takes each stored response as its JSON, or its
stream's last event (`response.completed`, `.incomplete` or `.failed`), is made: before the
client can see it, so an id the client holds can be chained from at once; a stream the client
abandoned before its end is not stored. No answer waits for the database.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from gateway.contracts.request import ParsedRequest
from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.dialects.responses import ResponsesTurn
from gateway.pipeline.parse import parse_request
from gateway.pipeline.relay import RecordedResponse, SSERelay
from gateway.pipeline.resolve import authenticate
from gateway.pipeline.services import Services
from gateway.server.ids import request_ids
from gateway.store.responses import ResponseRecord, ResponseStore, owner_of
from providers.base import Endpoint

_MAX_PAGE = 100


async def with_history(services: Services, parsed: ParsedRequest,
                       turn: ResponsesTurn) -> ParsedRequest:
    """The request with its owner known and, after `previous_response_id`, the history of
    that response's chain before its input (a 400 naming the field when there is none)."""
    principal = await authenticate(services.resolver, parsed)
    owner = owner_of(principal.id if principal is not None else None, parsed.provider_key)
    previous = turn.request.previous_response_id
    store = services.responses
    if previous is None:
        turn.continue_from(owner, None, store)
        return parsed
    if store is None:
        raise InvalidRequest("'previous_response_id' needs the gateway's response store, "
                             "which is not open", param="previous_response_id")
    try:
        chain = await store.chain(previous, owner)
    except (DBAPIError, OSError):
        raise ServiceUnavailable("the response store is unreachable, so previous_response_id "
                                 "cannot be resolved", code="store_unavailable") from None
    if chain is None:
        raise InvalidRequest(f"previous response '{previous}' was not found: it does not "
                             "exist, was deleted or expired, or was made with another key",
                             param="previous_response_id", code="previous_response_not_found")
    body, native = turn.continue_from(owner, chain, store)
    return replace(parsed, body=body, native_body=native)


def keep_native(turn: ResponsesTurn, response: Response) -> Response:
    """A native target's answer (OpenAI's own Response, untranslated) is stored from what
    the client is sent: a JSON answer now, a stream at its last event, before that goes out.
    A translated answer was stored as it was made (its record is set)."""
    if not turn.request.store or turn.record is not None or response.status_code != 200:
        return response
    if isinstance(response, RecordedResponse):
        answer = orjson.loads(response.body)
        if isinstance(answer, dict):
            turn.native_finished(answer)
        return response
    if isinstance(response, SSERelay) and response.answer.native:
        return NativeStored(response, turn)
    return response


_TERMINAL_EVENTS = (b"event: response.completed\n", b"event: response.incomplete\n",
                    b"event: response.failed\n")


class NativeStored(Response):
    """Relays a native Responses stream; the message carrying its terminal event stores the
    Response in it before going out (one event per message: relay.NativeEncoder)."""

    def __init__(self, inner: SSERelay, turn: ResponsesTurn) -> None:
        self.inner = inner
        self.turn = turn
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            body = message.get("body") or b""
            if body.startswith(_TERMINAL_EVENTS):
                data = body.partition(b"\ndata: ")[2]
                event = orjson.loads(data) if data else None
                if isinstance(event, dict) and isinstance(event.get("response"), dict):
                    self.turn.native_finished(event["response"])
            await send(message)

        await self.inner(scope, receive, sending)


# --- GET / DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items -----------------

async def retrieve(request: Request) -> Response:
    if request.query_params.get("stream", "").lower() == "true":
        raise InvalidRequest("replaying a stored response as a stream is not supported; "
                             "retrieve it without 'stream'", param="stream")
    record = await _record(request)
    return _json(record.response)


async def delete(request: Request) -> Response:
    store, owner, response_id = await _caller(request)
    if not await _reached(store.delete(response_id, owner)):
        raise _not_found(response_id)
    return _json({"id": response_id, "object": "response.deleted", "deleted": True})


async def input_items(request: Request) -> Response:
    query = request.query_params
    limit = _limit(query.get("limit"))
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be asc or desc", param="order")
    record = await _record(request)
    items = record.input_items if order == "asc" else record.input_items[::-1]
    if query.get("after"):
        items = items[_position(items, query["after"], "after") + 1:]
    if query.get("before"):  # the page just before the cursor
        items = items[:_position(items, query["before"], "before")]
        page = items[-limit:]
    else:
        page = items[:limit]
    return _json({"object": "list", "data": page,
                  "first_id": page[0]["id"] if page else None,
                  "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit})


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return 20
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _MAX_PAGE:
        raise InvalidRequest(f"'limit' must be a whole number from 1 to {_MAX_PAGE}",
                             param="limit")
    return limit


def _position(items: list[dict[str, Any]], cursor: str, name: str) -> int:
    for at, item in enumerate(items):
        if item["id"] == cursor:
            return at
    raise InvalidRequest(f"'{name}' names no input item of this response: {cursor!r}",
                         param=name)


async def _record(request: Request) -> ResponseRecord:
    store, owner, response_id = await _caller(request)
    record: ResponseRecord | None = await _reached(store.get(response_id, owner))
    if record is None:
        raise _not_found(response_id)
    return record


async def _caller(request: Request) -> tuple[ResponseStore, str, str]:
    """The store, who is asking (as a response owner), and the response id asked for."""
    services: Services = request.app.state.services
    response_id = request.path_params["response_id"]
    request_id, trace_id = request_ids(request)
    parsed = parse_request(endpoint=Endpoint.PROXY, method=request.method,
                           path=f"responses/{response_id}", query="", headers=request.headers,
                           raw_body=b"", body=None, dialect=CHAT.name, request_id=request_id,
                           trace_id=trace_id)
    principal = await authenticate(services.resolver, parsed)
    if services.responses is None:
        raise _not_found(response_id)
    return services.responses, owner_of(principal.id if principal is not None else None,
                                         parsed.provider_key), response_id


async def _reached(work: Any) -> Any:
    try:
        return await work
    except (DBAPIError, OSError):
        raise ServiceUnavailable("the response store is unreachable",
                                 code="store_unavailable") from None


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id",
                    code="response_not_found")


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


routes = [
    Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", input_items, methods=["GET"]),
]
