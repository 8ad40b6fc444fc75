"""Client dialects: how a client's API is decoded into the canonical request and how the
canonical answer, stream and errors are encoded back to it.

The canonical dialect is OpenAI's Chat Completions family (chat, legacy completions,
embeddings): `providers/` translates it toward every upstream. A new client API (Anthropic
Messages, OpenAI Responses) is one module here with a `Dialect`, plus its routes in
`gateway/pipeline/routes.py`, mirroring how an adapter in `providers/` is added.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Protocol

import orjson

from gateway.contracts.outcome import Outcome
from gateway.errors import GatewayError
from providers.base import Endpoint

_EVENT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


class Decoded(NamedTuple):
    """A client body decoded: the canonical body the pipeline runs on, and the client's own
    body when some providers speak its dialect natively (`NativeDialect`)."""

    body: dict[str, Any] | None
    native: dict[str, Any] | None = None
    # (field, why) when the native body holds something with no canonical form: only a
    # target that takes the dialect natively can serve it; any other answers 400.
    native_only: tuple[str, str] | None = None


class StreamEncoder(Protocol):
    """Encodes one canonical stream (OpenAI chunks) as the client's server-sent events."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def error(self, exc: GatewayError) -> bytes:
        """The event that ends a stream which failed after its first byte."""

    def end(self) -> bytes:
        """The bytes after the last chunk of a stream that ended cleanly."""


class Dialect(Protocol):
    name: str  # recorded on usage rows: "chat", "messages", "responses"

    def decode(self, endpoint: Endpoint, raw: bytes) -> Decoded:
        """The canonical body (and the native one); a 400 naming the field when the client's
        body is invalid."""

    def encode_answer(self, content: bytes, outcome: Outcome) -> bytes:
        """A canonical JSON answer as the client's (`outcome`: the request, for its ids and
        model, and what the answering target was sent)."""

    def stream_encoder(self, outcome: Outcome) -> StreamEncoder:
        """The encoder of one stream: a new one when it keeps state (block indexes)."""

    def error_body(self, exc: GatewayError) -> bytes:
        """A gateway error in the client's error shape."""


class NativeStream(Protocol):
    """Watches one native stream's events (the dialect's own) as they pass to the client."""

    # OpenAI-shaped usage so far (prompt_tokens with cached ones included, completion_tokens,
    # prompt_tokens_details.cached_tokens): what the usage log bills.
    usage: dict[str, Any] | None

    def event(self, event: dict[str, Any]) -> str:
        """Take one event; the text the model generated in it (for estimates). Raises
        providers.base.StreamError for an error event."""

    def end(self) -> None:
        """The upstream stream is exhausted: StreamError when the dialect's end never came."""

    def result(self) -> dict[str, Any] | None:
        """The whole answer the events added up to (kept by the cache), None if incomplete."""


class NativeDialect(Protocol):
    """A client dialect some providers speak themselves (`Adapter.native_dialects`): its
    requests reach them untranslated and their answers come back as they are. What the
    pipeline must still read in them (usage, errors, the end of a stream) it reads here."""

    name: str
    # Client headers of the dialect (anthropic-version, anthropic-beta) handed to a native
    # target's adapter, which sends those its provider takes.
    headers: tuple[str, ...]

    def usage(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """OpenAI-shaped usage of a native JSON answer to `path` (None: nothing billable)."""

    def stream(self, path: str) -> NativeStream:
        """A new watcher for one native stream."""

    def replay(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of a stream that carries this whole answer (a cache hit, streamed)."""

    async def local_answer(self, path: str, body: dict[str, Any]) -> bytes | None:
        """The answer to a request for `path` that a target not speaking the dialect cannot
        serve, made by the gateway (count_tokens: a local estimate); None: translate it."""


class NativeEncoder:
    """A native stream to the client: each event as `event: <type>` and its JSON, as the
    provider sent it; an error after the first byte in the dialect's own error event."""

    __slots__ = ("errors",)

    def __init__(self, errors: StreamEncoder) -> None:
        self.errors = errors

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        # hook_results (the guardrails' report) has no type: it goes as its own event name.
        name = "hook_results" if "hook_results" in chunk else chunk.get("type")
        data = b"data: " + orjson.dumps(chunk) + b"\n\n"
        if not isinstance(name, str) or not _EVENT_NAME.fullmatch(name):
            return data  # a name that could break the framing goes unnamed
        return b"event: " + name.encode() + b"\n" + data

    def error(self, exc: GatewayError) -> bytes:
        return self.errors.error(exc)

    def end(self) -> bytes:
        return b""
