"""The OpenAI Responses dialect (`POST /v1/responses`), translated for every provider.

A request is decoded into the canonical chat body (responses_request.py), runs through the
same pipeline as a chat completion, and its answer comes back as a Response object
(responses_output.py) or as the Responses event sequence (responses_stream.py). Errors use
OpenAI's envelope, as the chat dialect does.

Unlike the chat dialect, one `ResponsesTurn` serves one request: the response id is minted
before anything is sent, so the id a stream's first event carries is the id stored, retrieved
and chained from; and with `store: true` the finished response goes to the response store
(gateway/store/responses/) as it is made, and its end goes out once its row is committed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.contracts.outcome import Outcome
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
    native_history,
    native_input,
    native_only,
    stored_items,
)
from gateway.pipeline.dialects.responses_stream import ResponsesStreamEncoder
from gateway.store.responses import Chain, ResponseRecord, ResponseStore, mint_response_id
from providers.base import Endpoint


class ResponsesTurn:
    """The Responses dialect for one request (a `Dialect`)."""

    name = "responses"

    def __init__(self) -> None:
        self.id = mint_response_id()
        self._client: dict[str, Any] = {}  # the body as the client sent it
        self._request: ResponsesRequest | None = None
        self._builder: ResponseBuilder | None = None
        self._only: tuple[str, str] | None = None  # the NATIVE_ONLY field set, and why
        self.owner: str | None = None
        self.chain: Chain | None = None
        self.store: ResponseStore | None = None
        self._decoded: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        # The finished Response (its id, the object), to store once its owner is known.
        self._made: tuple[str, dict[str, Any]] | None = None
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
        self._client = json_object(raw)
        self._request = decode_request(self._client)
        self._builder = ResponseBuilder(self._request, self.id)
        self._only = native_only(self._client)
        self._decoded = (self._request.body(), self._native(None))
        return Decoded(*self._decoded, self._only)

    def continue_from(self, owner: str | None, chain: Chain | None,
                      store: ResponseStore | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The canonical and native bodies with `chain`'s history (without one, decode's);
        `owner` will own the response (None: not known yet, see `claim`), which goes to
        `store` (when the request asked to store it) once made."""
        self.owner, self.chain, self.store = owner, chain, store
        if chain is None:
            return self._decoded
        history = stored_items(chain.items)
        return self.request.body(items_to_messages(history)), self._native(history)

    def claim(self, owner: str) -> None:
        """The owner, when it was not known before the request was resolved (a fresh turn:
        no chain needed it, so the caller was authenticated once, by the pipeline). A
        response made already is stored now."""
        if self.owner is None:
            self.owner = owner
            if self._made is not None:
                self._save(*self._made)

    def _native(self, history: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The client's own body, for a target that speaks Responses (OpenAI, Azure). The
        gateway keeps the state whatever the target: it sends `store: false` (OpenAI keeps no
        copy, so a DELETE here deletes it all) and a chain's history as `input` items rather
        than `previous_response_id`; `background` runs in the foreground, as translated."""
        body = self._client.copy()
        body.pop("previous_response_id", None)
        body.pop("background", None)
        if self._only is None:
            body["store"] = False  # a stored conversation or prompt is OpenAI's to keep
        if history is not None:
            body["input"] = [*native_history(history), *native_input(self._client.get("input"))]
        return body

    def encode_answer(self, content: bytes, outcome: Outcome) -> bytes:
        self.builder.sent_max_tokens(outcome.clamped_output)
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

    def stream_encoder(self, outcome: Outcome) -> ResponsesStreamEncoder:
        self.builder.sent_max_tokens(outcome.clamped_output)
        return ResponsesStreamEncoder(self.builder, self._finished)

    def error_body(self, exc: GatewayError) -> bytes:
        return orjson.dumps(exc.envelope())

    def _finished(self, response: dict[str, Any]) -> None:
        """Store a finished response (when asked to), before the client can see its end:
        called as its JSON or its stream's last event is made."""
        self._keep(self.id, response)

    async def written(self) -> None:
        """Wait until the response stored for this turn, if any, is committed (at most the
        store's WRITE_WAIT_S): its answer goes out only then (stored_responses.py)."""
        if self.record is not None and self.store is not None:
            await self.store.written(self.record.id)

    def native_finished(self, response: dict[str, Any]) -> None:
        """Store a Response a native target made, as the client asked, under this turn's id
        (the client is shown it in place of the upstream's: stored_responses.py). An
        upstream's id names nothing it keeps (it was sent `store: false`), and may come
        again: a cached answer given to another key, an upstream that repeats its ids, or
        one too long for the table. The stored copy says `store: true` and names the previous
        response, as it would have from OpenAI had the gateway not kept the state itself."""
        response_id = response.get("id")
        if isinstance(response_id, str) and response_id and self._made is None:
            self._keep(self.id, {**response, "id": self.id, "store": True,
                                 "previous_response_id": self.request.previous_response_id})

    def _keep(self, response_id: str, response: dict[str, Any]) -> None:
        """Store the finished Response now when its owner is known, else once it is."""
        if not self.request.store:
            return
        self._made = (response_id, response)
        if self.owner is not None:
            self._save(response_id, response)

    def _save(self, response_id: str, response: dict[str, Any]) -> None:
        request = self.request
        assert self.owner is not None
        chain = self.chain
        output = response.get("output")
        model = response.get("model")
        self.record = ResponseRecord(
            id=response_id, owner=self.owner,
            previous_response_id=request.previous_response_id,
            root_id=chain.root_id if chain is not None else response_id,
            depth=chain.depth + 1 if chain is not None else 0, created_at=datetime.now(UTC),
            model=model if isinstance(model, str) else "",
            status=str(response.get("status") or "completed"), response=response,
            input_items=request.input_items,
            output_items=output if isinstance(output, list) else [])
        if self.store is not None:
            self.store.save(self.record)
