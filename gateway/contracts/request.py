"""The parse stage's output: one client request, frozen, with every x-portkey-* header read.

Nothing downstream changes it; a stage that needs a different body (a prompt's rendered
messages) makes a new one with `dataclasses.replace`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers

from gateway.guardrails.hooks import NO_HOOKS, HookSet
from providers.base import Endpoint

PREFIX = "x-portkey-"
# Headers never copied upstream, even when a client lists them in forward-headers.
HOP_BY_HOP = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect",
    "upgrade", "te", "trailer", "proxy-authorization", "proxy-connection", "accept-encoding",
})
# Client headers that carry a credential (never forwarded beside a secret the gateway supplies).
CREDENTIAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie",
})


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the client asked for. `body` is the canonical (Chat Completions family) body,
    decoded from the client's dialect; the pipeline never mutates it."""

    request_id: str
    trace_id: str
    endpoint: Endpoint
    method: str
    path: str  # below /v1/, e.g. "chat/completions"
    query: str
    headers: Headers
    raw_body: bytes
    body: dict[str, Any] | None
    dialect: str = "chat"  # the client's dialect: what usage rows call it
    # The client's own body, for a dialect some providers speak themselves (Anthropic's
    # Messages): a target whose adapter takes it natively is sent this, not `body`.
    native_body: dict[str, Any] | None = None
    # (field, why): the native body holds something `body` could not carry, so a target
    # that must translate the request refuses it (400 naming the field).
    native_only: tuple[str, str] | None = None
    provider: str | None = None
    provider_key: str | None = None
    # x-portkey-config: an inline JSON config, or the id of a saved one (never both).
    inline_config: str | None = None
    saved_config: str | None = None
    custom_host: str | None = None
    forward_headers: tuple[str, ...] | None = None
    request_timeout_ms: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    virtual_key: str | None = None
    # Every other x-portkey-* header, by suffix: provider options such as azure-resource-name.
    options: dict[str, str] = field(default_factory=dict)
    # x-portkey-default-input-guardrails / -output-guardrails, run after the config's hooks.
    default_hooks: HookSet = NO_HOOKS
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def stream(self) -> bool:
        """Whether the client asked for a stream (a target's override_params may differ:
        the prepared upstream request says what was sent)."""
        return bool(self.body and self.body.get("stream"))

    @property
    def has_config(self) -> bool:
        return self.inline_config is not None or self.saved_config is not None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000
