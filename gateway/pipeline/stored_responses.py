"""Stored OpenAI Responses on the request path: the history a `previous_response_id` names,
and `GET`/`DELETE /v1/responses/{id}` (GET replays it as a stream on `stream=true`), its
`input_items`, and `POST .../cancel` (a 400: nothing runs in the background here).

The store (gateway/store/responses/) takes each stored response as its JSON, or its
stream's last event (`response.completed`, `.incomplete` or `.failed`), is made, and that
JSON or event goes out once the row is committed: an id the client holds can be chained from
at once on any replica, and a replica killed after answering has lost nothing. A database
that fails writes holds no answer (the store is degraded: rows are served from the process
that made them while it retries). A stream the client abandoned before its end is not stored.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from gateway.contracts.identity import Principal
from gateway.contracts.outcome import Outcome
from gateway.contracts.request import ParsedRequest
from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.dialects.responses import ResponsesTurn
from gateway.pipeline.dialects.responses_replay import replay
from gateway.pipeline.parse import parse_request
from gateway.pipeline.relay import RecordedResponse, SSERelay
from gateway.pipeline.resolve import UNSET, Unset, authenticate
from gateway.pipeline.services import Services
from gateway.server.ids import request_ids
from gateway.store.responses import ResponseRecord, ResponseStore, owner_of
from providers.base import Endpoint

_MAX_PAGE = 100


async def with_history(services: Services, parsed: ParsedRequest,
                       turn: ResponsesTurn) -> tuple[ParsedRequest, Principal | None | Unset]:
    """The request with, after `previous_response_id`, the history of that response's chain
    before its input (a 400 naming the field when there is none), and the caller. Only then
    is the caller authenticated here, to own the chain, and the pipeline reuses it (`UNSET`
    otherwise): a fresh turn's owner is claimed in `when_stored` from the pipeline's own
    authentication, so every turn looks its caller up once."""
    previous = turn.request.previous_response_id
    store = services.responses
    if previous is None:
        turn.continue_from(None, None, store)
        return parsed, UNSET
    principal = await authenticate(services.resolver, parsed)
    owner = owner_of(principal.id if principal is not None else None, parsed.provider_key)
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
    return replace(parsed, body=body, native_body=native), principal


async def when_stored(turn: ResponsesTurn, response: Response, outcome: Outcome) -> Response:
    """`response`, released only once the response it stores is committed: a JSON answer is
    held here, a stream's terminal event in `StoredStream`. The owner is the caller the
    pipeline resolved (`outcome`). A translated answer was handed to the turn as it was made;
    a native target's (OpenAI's own Response, untranslated) is stored from what the client
    is sent: a JSON answer now, a stream at its terminal event."""
    if not turn.request.store or turn.store is None:
        return response
    principal = outcome.principal
    turn.claim(owner_of(principal.id if principal is not None else None,
                        outcome.request.provider_key))
    if isinstance(response, RecordedResponse):
        if turn.record is None and response.status_code == 200:
            answer = orjson.loads(response.body)
            if isinstance(answer, dict):
                turn.native_finished(answer)
                if turn.record is not None:  # the id it is stored under, not the upstream's
                    _replace_body(response, orjson.dumps({**answer, "id": turn.id}))
        await turn.written()
        return response
    if isinstance(response, SSERelay):
        return StoredStream(response, turn)
    return response


def _replace_body(response: RecordedResponse, body: bytes) -> None:
    response.body = body
    response.headers["content-length"] = str(len(body))


_TERMINAL_EVENTS = (b"event: response.completed\n", b"event: response.incomplete\n",
                    b"event: response.failed\n")
# The events of a Responses stream that carry the Response object (and its id).
_RESPONSE_EVENTS = (*_TERMINAL_EVENTS, b"event: response.created\n",
                    b"event: response.in_progress\n", b"event: response.queued\n")


class StoredStream(Response):
    """Relays a Responses stream whose terminal event goes out once the response it carries
    is committed. A native stream's message carrying that event (one event per message:
    relay.NativeEncoder) stores the Response in it first; a translated stream's encoder
    stored it as it made the event. A native stream's events show the Response under the
    id it is stored under (the turn's), not the upstream's (ResponsesTurn.native_finished)."""

    def __init__(self, inner: SSERelay, turn: ResponsesTurn) -> None:
        self.inner = inner
        self.turn = turn
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        turn = self.turn
        native = self.inner.answer.native
        held = False  # whether the stored response's commit was waited for

        async def after_commit(message: Message) -> None:
            await turn.written()
            await send(message)

        # A plain function handing back `send`'s own awaitable: no coroutine of its own for
        # each of a stream's ~13 messages, only for the one that waits.
        def sending(message: Message) -> Awaitable[None]:
            nonlocal held
            if native and (message.get("body") or b"").startswith(_RESPONSE_EVENTS):
                message = {**message, "body": _own_id(message["body"], turn)}
            if not held and turn.record is not None:
                held = True
                return after_commit(message)
            return send(message)

        await self.inner(scope, receive, sending)


def _own_id(body: bytes, turn: ResponsesTurn) -> bytes:
    """A native event carrying the Response, with the turn's id in it; its terminal event
    stores the Response first."""
    head, _, data = body.partition(b"\ndata: ")
    event = orjson.loads(data) if data else None
    if not (isinstance(event, dict) and isinstance(event.get("response"), dict)):
        return body
    if turn.record is None and body.startswith(_TERMINAL_EVENTS):
        turn.native_finished(event["response"])
    event["response"] = {**event["response"], "id": turn.id}
    return head + b"\ndata: " + orjson.dumps(event) + b"\n\n"


# --- GET / DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items -----------------

async def retrieve(request: Request) -> Response:
    """The stored Response; with `stream=true`, replayed as its event stream (after the
    `starting_after`-th event when given: responses_replay.py)."""
    query = request.query_params
    stream = (query.get("stream") or "false").lower()
    if stream not in ("true", "false"):
        raise InvalidRequest("'stream' must be true or false", param="stream")
    starting_after = _starting_after(query.get("starting_after")) if stream == "true" else -1
    record = await _record(request)
    if stream == "false":
        return _json(record.response)
    return Response(replay(record.response, starting_after), media_type="text/event-stream",
                    headers={"cache-control": "no-cache"})


async def cancel(request: Request) -> Response:
    """OpenAI cancels only responses made with `background: true` that are still running.
    The gateway runs every response in the foreground, so one it stored has finished and
    has nothing to cancel: a 400 saying so (404 for one the caller does not own)."""
    record = await _record(request)
    raise InvalidRequest(
        f"Response '{record.id}' cannot be cancelled: only responses created with "
        "background=true that are still running can be, and this gateway answers every "
        "response in the foreground (background=true included), so it is already "
        f"{record.status}", code="response_not_cancellable")


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


def _starting_after(value: str | None) -> int:
    if value is None or value == "":
        return -1
    try:
        after = int(value)
    except ValueError:
        after = -1
    if after < 0 or str(after) != value.strip():
        raise InvalidRequest("'starting_after' must be a sequence number (a whole number "
                             "from 0)", param="starting_after")
    return after


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
    Route("/v1/responses/{response_id}/cancel", cancel, methods=["POST"]),
]
