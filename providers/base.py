"""The adapter contract: pure translation between OpenAI's format and a provider's wire format.

Adapters do no I/O and know nothing of the web framework or the settings. The gateway hands
them a request body and a `Target`, sends the `UpstreamRequest` they build, and feeds the
answer back through `translate_response`, `translate_event` (then `end_stream`) and
`translate_error`. What an adapter can do is a member of `Adapter`, never probed for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

import orjson


class Endpoint(StrEnum):
    """The unified OpenAI routes; PROXY forwards any other `/v1/*` path untouched."""

    CHAT = "chat/completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MODELS = "models"
    PROXY = "proxy"


StreamFormat = Literal["sse", "aws-eventstream"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how one attempt is sent: the provider, its key, and provider options."""

    provider: str
    api_key: str | None = field(default=None, repr=False)  # never in logs, even by accident
    base_url: str | None = None
    options: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    # Seconds since the epoch, set by the gateway: request signing (SigV4) needs a clock.
    now: float | None = None


# A `Param.target` of MERGE means: the transform returns a dict merged into the body's root.
MERGE = ""


@dataclass(frozen=True, slots=True)
class Param:
    """One row of a provider table: where an OpenAI field goes and how it changes on the way."""

    target: str  # dotted path in the provider's body, or MERGE
    transform: Callable[[Any], Any] | None = None
    clamp: tuple[float, float] | None = None
    default: Any = None  # written when no row filled `target`


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class ProviderError:
    """An upstream failure in OpenAI's terms; the gateway prefixes the message with the slug."""

    status: int
    message: str
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


@dataclass(slots=True)
class SSEEvent:
    event: str = ""
    data: str = ""
    id: str = ""
    retry: int | None = None


@dataclass(slots=True)
class StreamState:
    """Per-stream scratch space an adapter may use while translating events."""

    model: str = ""
    response_id: str = ""
    created: int = 0
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    # Set by the adapter when the provider signalled a proper end ([DONE], message_stop, ...);
    # a stream that stops without it (nor a finish_reason) was cut off.
    completed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class StreamError(Exception):
    """An error event inside a stream; before the first chunk it still triggers fallback."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


class StreamCutOff(Exception):
    """The stream stopped with no sign that it was complete (in OpenAI's format: neither
    `[DONE]` nor a finish_reason); the gateway answers 502 upstream_malformed. Adapters whose
    provider sends an end event of its own raise a StreamError (stream_truncated) instead."""


class ConfigurationError(ValueError):
    """The target lacks something the provider needs (a host, a region, a deployment)."""


class Adapter(Protocol):
    slug: str
    stream_format: StreamFormat
    # Ask OpenAI-compatible upstreams for `stream_options.include_usage`.
    injects_stream_usage: bool
    # Provider-specific `x-portkey-<name>` headers this adapter reads into `Target.options`.
    header_options: tuple[str, ...]
    # False: the provider answers in OpenAI's format already; JSON bodies pass through unread.
    rewrites_responses: bool
    # The `Target.options` name holding a Google service-account JSON, from which the gateway
    # mints a bearer token into `Target.api_key`; None where the provider has no such option.
    service_account_option: str | None

    def build_request(
        self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest: ...

    def proxy_url(self, path: str, target: Target) -> str: ...

    def auth_headers(self, target: Target) -> dict[str, str]: ...

    def translate_response(
        self, endpoint: Endpoint, body: dict[str, Any], *, now: int, request_id: str = "",
        model: str = "",
    ) -> dict[str, Any]: ...

    def translate_event(
        self, endpoint: Endpoint, event: SSEEvent, state: StreamState
    ) -> list[dict[str, Any]]: ...

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        """Called once the upstream stream is exhausted: the last chunks (a usage chunk), or
        StreamError / StreamCutOff when the provider's end never came (a truncated stream)."""
        ...

    def translate_error(self, status: int, body: Any) -> ProviderError: ...

    # Client dialects other than Chat Completions that the provider speaks itself ("messages":
    # Anthropic's Messages API). A request in one of them reaches it untranslated, through the
    # three methods below; an adapter that speaks none states `frozenset()` (`NoNativeDialects`).
    native_dialects: frozenset[str]

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        """Whether a `dialect` request for `path` (below /v1/, e.g. "messages/count_tokens")
        to `model` can go as the client sent it; else the gateway translates it."""
        ...

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        """The upstream request for a body in the client's own dialect. `headers`: the
        client's headers of that dialect (anthropic-version, anthropic-beta); the adapter
        sends those its provider takes, and no others."""
        ...

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        """One upstream stream event of a native request as the dialect's own events (each
        the JSON of one client event, whose `type` names it)."""
        ...


class NoNativeDialects:
    """For adapters whose provider speaks only what `build_request` translates to."""

    native_dialects: frozenset[str] = frozenset()

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        return False

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        raise ConfigurationError(f"this provider does not take '{dialect}' requests as they are")

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        raise ConfigurationError(f"this provider does not stream '{dialect}' events")


def sse_events(event: SSEEvent) -> list[dict[str, Any]]:
    """A provider's own SSE event, already in the client's dialect: its JSON, typed by name."""
    if not event.data:
        return []
    data = orjson.loads(event.data)
    if not isinstance(data, dict):
        raise ValueError("a stream event's data is not a JSON object")
    if event.event and "type" not in data:
        data["type"] = event.event
    return [data]
