"""Traces reach an OTLP/HTTP collector: a span per request, a child span per attempt."""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from portkey_ai import createHeaders
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.observability.otel import w3c_trace_id
from tests.support.servers import ThreadedServer

MESSAGES = [{"role": "user", "content": "trace me"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Collector:
    """A loopback OTLP/HTTP trace receiver that decodes what it is sent."""

    def __init__(self) -> None:
        self.spans: list = []
        self.lock = threading.Lock()

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        with self.lock:
            for resource_spans in export.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return Response(ExportTraceServiceResponse().SerializeToString(),
                        media_type="application/x-protobuf")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])


@pytest.fixture
def collector():
    receiver = Collector()
    with ThreadedServer(receiver.app()) as server:
        receiver.url = server.url
        yield receiver


def attributes(span) -> dict:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = v.string_value or v.int_value or v.bool_value or v.double_value
    return out


def test_w3c_trace_ids():
    assert w3c_trace_id(TRACE_ID) == int(TRACE_ID, 16)
    assert w3c_trace_id(TRACE_ID.upper()) == int(TRACE_ID, 16)
    for bad in ("0" * 32, "abc", TRACE_ID + "0", "g" * 32, "my-trace-1"):
        assert w3c_trace_id(bad) is None


def test_request_and_attempt_spans_are_exported(start_gateway, collector, mock_url):
    gateway = start_gateway(otlp_endpoint=collector.url, otlp_export_interval_ms=50,
                            retry_backoff_base_ms=5, retry_backoff_max_ms=10)
    config = {"retry": {"attempts": 2}, "provider": "openai", "api_key": "sk-test",
              "custom_host": f"{mock_url}/s/fail-first-1+status-503/v1"}

    def gpt(trace_id: str | None) -> openai.OpenAI:
        return openai.OpenAI(api_key="unused", base_url=f"{gateway.url}/v1", max_retries=0,
                             default_headers=createHeaders(config=json.dumps(config),
                                                           trace_id=trace_id))

    gpt(TRACE_ID).chat.completions.create(model="m1", messages=MESSAGES)
    raw = gpt("not-a-w3c-id").chat.completions.with_raw_response.create(
        model="m2", messages=MESSAGES, stream=True)
    assert raw.headers["x-portkey-trace-id"] == "not-a-w3c-id"
    list(raw.parse())
    raw = gpt(None).chat.completions.with_raw_response.create(model="m3", messages=MESSAGES)
    generated = raw.headers["x-portkey-trace-id"]
    gateway.stop()  # shutting down flushes every span still buffered

    requests = [s for s in collector.spans if s.name == "POST /v1/chat/completions"]
    attempts = [s for s in collector.spans if s.name == "gateway.attempt"]
    assert len(requests) == 3
    assert len(attempts) == 3 + 1  # the first request retried once
    by_model = {attributes(s)["gen_ai.request.model"]: s for s in requests}

    first = by_model["m1"]
    assert first.trace_id.hex() == TRACE_ID
    assert not first.parent_span_id
    first_attempts = [a for a in attempts if a.parent_span_id == first.span_id]
    assert [attributes(a)["http.response.status_code"] for a in first_attempts] == [503, 200]
    assert all(a.trace_id == first.trace_id for a in first_attempts)
    described = attributes(first)
    assert described["http.response.status_code"] == 200
    assert described["gateway.retry_count"] == 1
    assert described["gen_ai.usage.output_tokens"] == 6

    second = by_model["m2"]
    assert second.trace_id.hex() != TRACE_ID and second.trace_id != bytes(16)
    assert attributes(second)["gateway.stream"] is True
    assert by_model["m3"].trace_id.hex() == generated  # the echoed id finds the trace


def test_no_endpoint_no_tracing(gateway, mock_url):
    client = openai.OpenAI(api_key="sk-test", base_url=f"{gateway.url}/v1", max_retries=0,
                           default_headers=createHeaders(provider="openai"))
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert gateway.config.app.state.services.telemetry is None


def test_a_traceparent_makes_the_request_a_child_of_the_callers_span(start_gateway, collector):
    gateway = start_gateway(otlp_endpoint=collector.url, otlp_export_interval_ms=50)
    parent_span = "00f067aa0ba902b7"
    response = httpx.get(f"{gateway.url}/healthz",
                         headers={"traceparent": f"00-{TRACE_ID}-{parent_span}-01"})
    assert response.status_code == 200
    gateway.stop()
    [span] = [s for s in collector.spans if s.name == "GET /healthz"]
    assert span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == parent_span
