"""The execute and relay stages' output: what happened to one request, for the recorders.

`Outcome` is the only mutable record of a request. The pipeline writes it as the request
runs (attempts, the answering target, status, usage, timings); recorders (usage log,
metrics, limit settlement) read it once the last byte is sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from gateway.contracts.identity import Principal, VirtualKey
from gateway.contracts.request import ParsedRequest
from gateway.guardrails.results import PhaseResult

# Estimates count at most this many characters exactly (gateway/usage/tokens.py).
EXACT_CHARS = 65_536


class Tokens(NamedTuple):
    """A tuple, not a frozen dataclass: every logged request makes one, and a frozen
    dataclass's __init__ sets each field through object.__setattr__."""

    prompt: int  # includes cached prompt tokens
    completion: int
    cached: int
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt + self.completion


class TextSample:
    """Text kept for an estimate: its first EXACT_CHARS characters, and how many there were
    in all. A stream's text is added chunk by chunk; it never grows past the cap."""

    __slots__ = ("parts", "kept", "chars")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.kept = 0  # characters in parts
        self.chars = 0  # characters added

    def add(self, text: str) -> None:
        if not text:
            return
        self.chars += len(text)
        room = EXACT_CHARS - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)


@dataclass(slots=True)
class Attempt:
    """One upstream call, kept for the response headers and the usage record."""

    path: str
    provider: str
    status: int | None = None
    latency_ms: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "provider": self.provider, "status": self.status,
                "latency_ms": round(self.latency_ms, 3), "error": self.error}


@dataclass(slots=True)
class Outcome:
    request: ParsedRequest
    # Who asked and through what (the resolve stage's findings the recorders need).
    principal: Principal | None = None
    virtual_key: VirtualKey | None = None  # the virtual key of the target last tried
    config_id: str | None = None
    prompt_id: str | None = None
    prompt_version: int | None = None
    # What happened.
    attempts: list[Attempt] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    answered_by: str | None = None  # the provider of the leaf that answered
    option_path: str | None = None
    retry_count: int = 0
    status: int | None = None
    ttfb_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    model: str | None = None  # the model sent upstream, after override_params
    # The output tokens sent upstream when the clamp lowered the client's (prepare.py).
    clamped_output: int | None = None
    # Generated text seen (streamed or read), capped, for estimates; and those estimated tokens.
    completion: TextSample = field(default_factory=TextSample)
    estimated_tokens: Tokens | None = None  # set before the recorders run, when needed
    response_body: str | None = None  # kept only when GATEWAY_LOG_BODIES is on
    upstream_ms: float = 0.0  # time spent waiting on upstreams
    backoff_ms: float = 0.0  # time spent sleeping between retries
    finished_ms: float | None = None
    cache_status: str | None = None
    cost_usd: Decimal | None = None
    priced: bool = False  # the usage log priced it: cost_usd None means no known price
    # The guardrails' results for the target last tried (None: none of that phase ran).
    hooks_before: PhaseResult | None = None
    hooks_after: PhaseResult | None = None
    recorded: bool = False
    limit_ticket: Any = None  # what the limiter holds for this request until it finishes

    @property
    def virtual_key_id(self) -> str | None:
        return self.virtual_key.id if self.virtual_key is not None else None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.request.started) * 1000

    def failed(self, status: int, error_type: str, message: str) -> None:
        self.status = status
        self.error_type = error_type
        self.error_message = message
