"""OpenTelemetry traces, sent over OTLP/HTTP when GATEWAY_OTLP_ENDPOINT is set.

One span per request (`TraceMiddleware`, so a stream's span lasts until its last byte) and a
child span per upstream attempt (`attempt_span` in `run_attempt`). The trace id is the
request's `x-portkey-trace-id` when that is a W3C trace id (32 hex digits, not all zero),
so the id a client sends, or the one the gateway echoes back, finds the trace.

The tracer provider belongs to the app, not the process: nothing is set globally.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.server.ids import request_ids
from gateway.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    from gateway.contracts.outcome import Attempt, Outcome
    from gateway.contracts.plan import Leaf

# OpenTelemetry itself is imported inside the functions below, which run only when tracing
# is on: a gateway without a collector does not load it.
_W3C_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def w3c_trace_id(value: str) -> int | None:
    """The trace id as an int when `value` is a valid W3C trace id, else None."""
    value = value.lower()
    if not _W3C_TRACE_ID.match(value) or value == "0" * 32:
        return None
    return int(value, 16)


def _header_trace_ids() -> Any:
    """An id generator whose root spans take the trace id the request asked for."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class HeaderTraceIds(RandomIdGenerator):
        def __init__(self) -> None:
            self.wanted: ContextVar[int | None] = ContextVar("wanted_trace_id", default=None)

        def generate_trace_id(self) -> int:
            return self.wanted.get() or int(super().generate_trace_id())

    return HeaderTraceIds()


class Telemetry:
    """The app's tracer: created from settings, flushed and shut down with the app."""

    def __init__(self, settings: Settings) -> None:
        # The SDK and the exporter (protobuf) load only when tracing is on: tens of MB that a
        # gateway without a collector should not carry.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        assert settings.otlp_endpoint
        endpoint = settings.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        self.ids = _header_trace_ids()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            id_generator=self.ids)
        self.provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint),
            schedule_delay_millis=settings.otlp_export_interval_ms))
        self.tracer = self.provider.get_tracer("gateway")

    @contextmanager
    def request_span(self, name: str, trace_id: int | None,
                     parent: Context | None = None) -> Iterator[Span]:
        """A server span: under `trace_id` when given, else a child of a W3C `traceparent`."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        token = self.ids.wanted.set(trace_id)
        try:
            span = self.tracer.start_span(name, context=None if trace_id else parent,
                                          kind=SpanKind.SERVER)
        finally:
            self.ids.wanted.reset(token)
        with trace.use_span(span, end_on_exit=True, record_exception=False):
            yield span

    def shutdown(self) -> None:
        """Export what is still buffered, then stop the exporter thread."""
        self.provider.shutdown()


class TraceMiddleware:
    """Pure ASGI: a server span around each HTTP request, described once it has finished."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        _, echoed = request_ids(request)
        trace_id, parent = _trace_origin(request, echoed)
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        name = f"{scope['method']} {scope['path']}"
        with self.telemetry.request_span(name, trace_id, parent) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                describe_request(span, getattr(request.state, "outcome", None),
                                 status[0] if status else 500)


def _trace_origin(request: Request, echoed: str) -> tuple[int | None, Context | None]:
    """The trace a request joins: the client's x-portkey-trace-id, else the caller's span
    named by a W3C `traceparent`, else the trace id the gateway echoes back."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    explicit = w3c_trace_id(request.headers.get("x-portkey-trace-id", ""))
    if explicit is not None:
        return explicit, None
    if "traceparent" in request.headers:
        traceparent = {"traceparent": request.headers["traceparent"]}
        parent = TraceContextTextMapPropagator().extract(traceparent)
        if trace.get_current_span(parent).get_span_context().is_valid:
            return None, parent
    return w3c_trace_id(echoed), None


def describe_request(span: Span, outcome: Outcome | None, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if outcome is None:
        return
    final = outcome.status or status
    attributes: dict[str, AttributeValue] = {
        "gateway.request_id": outcome.request.request_id,
        "gateway.trace_id": outcome.request.trace_id,
        "gateway.provider": outcome.answered_by or outcome.request.provider or "",
        "gateway.attempts": len(outcome.attempts),
        "gateway.retry_count": outcome.retry_count,
        "gateway.stream": outcome.request.stream,
        "gateway.status": final,
    }
    model = outcome.request.body.get("model") if isinstance(outcome.request.body, dict) else None
    if isinstance(model, str):
        attributes["gen_ai.request.model"] = model
    usage = outcome.usage if isinstance(outcome.usage, dict) else {}
    for key, name in (("prompt_tokens", "input"), ("completion_tokens", "output")):
        if isinstance(usage.get(key), int):
            attributes[f"gen_ai.usage.{name}_tokens"] = usage[key]
    if outcome.cache_status is not None:
        attributes["gateway.cache_status"] = outcome.cache_status
    if outcome.cost_usd is not None:
        attributes["gateway.cost_usd"] = float(outcome.cost_usd)
    if outcome.ttfb_ms is not None:
        attributes["gateway.ttfb_ms"] = outcome.ttfb_ms
    span.set_attributes(attributes)
    if final >= 500 or outcome.error_type:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, outcome.error_type or str(final)))


@contextlib.contextmanager
def attempt_span(telemetry: Telemetry | None, leaf: Leaf,
                 attempts: list[Attempt]) -> Iterator[None]:
    """A child span around one upstream call when tracing is on; described by the attempt
    record the call appended to `attempts`."""
    if telemetry is None:
        yield
        return
    from opentelemetry.trace import SpanKind

    with telemetry.tracer.start_as_current_span(
            "gateway.attempt", kind=SpanKind.CLIENT, record_exception=False) as span:
        span.set_attributes({"gateway.provider": leaf.provider, "gateway.target": leaf.path})
        try:
            yield
        finally:
            if attempts:
                describe_attempt(span, attempts[-1])


def describe_attempt(span: Span, attempt: Attempt) -> None:
    span.set_attribute("gateway.latency_ms", round(attempt.latency_ms, 3))
    if attempt.status is not None:
        span.set_attribute("http.response.status_code", attempt.status)
    if attempt.error:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, attempt.error))
