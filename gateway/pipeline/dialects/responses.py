"""The OpenAI Responses dialect (`POST /v1/responses`), translated for every provider.

A request is decoded into the canonical chat body (responses_request.py), runs through the
same pipeline as a chat completion, and its answer comes back as a Response object
(responses_output.py) or as the Responses event sequence (responses_stream.py). Errors use
OpenAI's envelope, as the chat dialect does.

Unlike the chat dialect, one `ResponsesTurn` serves one request: the response id is minted
before anything is sent, so the id a stream's first event carries is the id stored, retrieved
and chained from; and with `store: true` the finished response goes to the response store
(gateway/store/responses.py) as it is made, before the client can see it end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.contracts.request import ParsedRequest
from gateway.errors import GatewayError
from gateway.pipeline.dialects import Decoded
from gateway.pipeline.dialects.chat import json_object
from gateway.pipeline.dialects.responses_output import (
    ResponseBuilder,
    incomplete_reason,
    response_usage,
)
from gateway.pipeline.dialects.responses_request import (
    ResponsesRequest,
    decode_request,
    items_to_messages,
)
from gateway.pipeline.dialects.responses_stream import ResponsesStreamEncoder
from gateway.store.responses import Chain, ResponseRecord, ResponseStore, mint_response_id
from providers.base import Endpoint


class ResponsesTurn:
    """The Responses dialect for one request (a `Dialect`)."""

    name = "responses"

    def __init__(self) -> None:
        self.id = mint_response_id()
        self._request: ResponsesRequest | None = None
        self._builder: ResponseBuilder | None = None
        self.owner: str | None = None
        self.chain: Chain | None = None
        self.store: ResponseStore | None = None
        self.record: ResponseRecord | None = None  # what was stored, once the answer is made

    @property
    def request(self) -> ResponsesRequest:
        assert self._request is not None, "decode() comes first"
        return self._request

    @property
    def builder(self) -> ResponseBuilder:
        assert self._builder is not None, "decode() comes first"
        return self._builder

    def decode(self, endpoint: Endpoint, raw: bytes) -> Decoded:
        self._request = decode_request(json_object(raw))
        self._builder = ResponseBuilder(self._request, self.id)
        return Decoded(self._request.body())

    def continue_from(self, owner: str, chain: Chain | None,
                      store: ResponseStore | None) -> dict[str, Any]:
        """The canonical body with `chain`'s history; `owner` will own the response, which
        goes to `store` (when the request asked to store it) once made."""
        self.owner, self.chain, self.store = owner, chain, store
        return self.request.body(chain.messages if chain is not None else ())

    def encode_answer(self, content: bytes, request: ParsedRequest) -> bytes:
        answer = orjson.loads(content)
        if not isinstance(answer, dict):
            return content
        choices = answer.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        given = choice.get("message")
        message: dict[str, Any] = given if isinstance(given, dict) else {}
        finish = choice.get("finish_reason")
        reason = incomplete_reason(finish)
        model = answer.get("model")
        extra = {"hook_results": answer["hook_results"]} if "hook_results" in answer else None
        response = self.builder.response(
            status="incomplete" if reason else "completed", incomplete=reason,
            output=self.builder.completion_output(message, finish),
            model=model if isinstance(model, str) else None,
            usage=response_usage(answer.get("usage")), extra=extra)
        self._finished(response)
        return orjson.dumps(response)

    def stream_encoder(self, request: ParsedRequest) -> ResponsesStreamEncoder:
        return ResponsesStreamEncoder(self.builder, self._finished)

    def error_body(self, exc: GatewayError) -> bytes:
        return orjson.dumps(exc.envelope())

    def _finished(self, response: dict[str, Any]) -> None:
        """Store a finished response (when asked to), before the client can see its end:
        called as its JSON or its stream's last event is made."""
        request = self.request
        if not request.store or self.owner is None:
            return
        chain = self.chain
        self.record = ResponseRecord(
            id=self.id, owner=self.owner, previous_response_id=request.previous_response_id,
            root_id=chain.root_id if chain is not None else self.id,
            depth=chain.depth + 1 if chain is not None else 0, created_at=datetime.now(UTC),
            model=response["model"], status=response["status"], response=response,
            input_items=request.input_items,
            messages=items_to_messages([*request.input_items, *response["output"]]))
        if self.store is not None:
            self.store.save(self.record)
