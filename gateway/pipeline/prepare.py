"""Prepare: the body a target is sent, built once per target after its `override_params`.

The single source of the model, the stream flag and the body from here on: the attempt
sends it, the relay streams or not by it, and the usage row records its model. A body
translated from another dialect has its requested output clamped to the target model's limit
here (`output_limits.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.contracts.plan import Leaf
from gateway.contracts.request import ParsedRequest
from gateway.errors import InvalidRequest
from gateway.pipeline.output_limits import CLAMPED_DIALECTS, OutputLimits, clamp_output
from providers.base import Adapter, Endpoint

_USAGE_STREAMS = (Endpoint.CHAT, Endpoint.COMPLETIONS)


@dataclass(frozen=True, slots=True)
class Prepared:
    body: dict[str, Any] | None  # None for passthrough and model lists
    model: str | None
    stream: bool
    strip_usage: bool = False  # the gateway asked the upstream for usage; the client did not
    # The client's own body (after override_params), sent untranslated through the adapter's
    # `build_native`: the target speaks the client's dialect. `body` stays the canonical one
    # (guardrails, the cache key), and is what a target that cannot take it is sent instead.
    native: dict[str, Any] | None = None
    # The output tokens a translated body asks for when the clamp lowered the client's value
    # (output_limits.py): what a Responses answer reports as its max_output_tokens.
    clamped_output: int | None = None

    @property
    def model_name(self) -> str:
        return self.model or ""


def prepare(request: ParsedRequest, leaf: Leaf, adapter: Adapter, *,
            guarded: bool = False, limits: OutputLimits | None = None) -> Prepared:
    """`guarded`: guardrails apply to this target. They read and answer canonical bodies, so
    such a target is always sent the translated body, never the client's native one: what
    they check is what is sent. A request that cannot be translated (native-only content) is
    then refused rather than sent unchecked. `limits`: the output limits a translated body
    is clamped to (None: no clamp)."""
    if request.body is None:
        return Prepared(None, None, stream=False)
    body = {**request.body, **leaf.override_params}
    model = body.get("model")
    stream = bool(body.get("stream")) and request.endpoint is not Endpoint.EMBEDDINGS
    if request.native_body is not None and not guarded \
            and request.dialect in adapter.native_dialects \
            and adapter.takes_native(request.dialect, request.path, str(model or "")):
        native = {**request.native_body, **leaf.override_params}
        return Prepared(body, model if isinstance(model, str) else None, stream, native=native)
    if request.native_only is not None:
        where, why = request.native_only
        reason = ("guardrails apply to this request and can only read what translates"
                  if guarded else f"{leaf.provider} (target {leaf.path}) cannot take the "
                  "request as it is")
        raise InvalidRequest(f"'{where}': {why}; {reason}", param=where, provider=leaf.provider,
                             code="untranslatable")
    clamped = None
    if limits is not None and request.dialect in CLAMPED_DIALECTS:
        name = model if isinstance(model, str) else None
        clamped = clamp_output(body, limits.limit(leaf.provider, name), leaf.override_params)
    strip_usage = False
    if stream and adapter.injects_stream_usage and request.endpoint in _USAGE_STREAMS:
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        if not options.get("include_usage"):
            strip_usage = True
            body["stream_options"] = {**options, "include_usage": True}
    return Prepared(body, model if isinstance(model, str) else None, stream, strip_usage,
                    clamped_output=clamped)
