"""Client dialects: how a client's API is decoded into the canonical request and how the
canonical answer, stream and errors are encoded back to it.

The canonical dialect is OpenAI's Chat Completions family (chat, legacy completions,
embeddings): `providers/` translates it toward every upstream. A new client API (Anthropic
Messages, OpenAI Responses) is one module here with a `Dialect`, plus its routes in
`gateway/pipeline/routes.py`, mirroring how an adapter in `providers/` is added.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.errors import GatewayError
from providers.base import Endpoint


class StreamEncoder(Protocol):
    """Encodes one canonical stream (OpenAI chunks) as the client's server-sent events."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def error(self, exc: GatewayError) -> bytes:
        """The event that ends a stream which failed after its first byte."""

    def end(self) -> bytes:
        """The bytes after the last chunk of a stream that ended cleanly."""


class Dialect(Protocol):
    name: str  # recorded on usage rows: "chat", "messages", "responses"

    def decode(self, endpoint: Endpoint, raw: bytes) -> dict[str, Any] | None:
        """The canonical body; a 400 naming the field when the client's body is invalid."""

    def encode_answer(self, content: bytes) -> bytes:
        """A canonical JSON answer as the client's."""

    def stream_encoder(self) -> StreamEncoder: ...

    def error_body(self, exc: GatewayError) -> bytes:
        """A gateway error in the client's error shape."""
