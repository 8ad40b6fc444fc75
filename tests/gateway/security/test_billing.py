"""Billing holds on disconnect (issue 22, attack 5; the non-stream half of attack 6).

Black-box against a real gateway (uvicorn on loopback, its SQLite usage log read back through
the admin API) and the loopback mock upstream:

- a client that reads every content chunk of a stream and leaves before the usage chunk is
  logged 499 with estimated tokens and their cost, and its API key's limits are charged;
  so is a stream of tool calls or of reasoning, and a stream left after a chunk with no
  text at all is billed its prompt;
- a non-stream client that leaves while the gateway waits on the upstream (or between
  retries) cancels the upstream call and every retry left; one that left while the call was
  in flight is billed its estimated prompt (the upstream bills the work), one that left
  while the gateway waited to retry a failed call pays nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from gateway.usage.tokens import count
from tests.gateway.limits.test_limits import fresh_minute
from tests.support.databases import admin_client
from tests.support.limited_keys import issued_key, key_store_settings, with_keys
from tests.support.mock_upstream import STREAM_WORDS, TOOL_CALL, MockUpstream, prompt_tokens
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

MODEL = "gpt-4o-mini"
PROMPT = "Count my tokens please"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
PER_MILLION = 1000.0  # $ per million tokens, in and out: a request of ~10 tokens costs ~$0.01
ESTIMATED_PROMPT, ESTIMATED_COMPLETION = count(PROMPT), count("".join(STREAM_WORDS))
PROMPT_COST = Decimal(str(PER_MILLION)) * ESTIMATED_PROMPT / 10**6


@pytest.fixture
def gateway_on(start_gateway, mock_url) -> Callable[..., ThreadedServer]:
    """A gateway whose `openai` provider is the mock scenario given, with a usage log."""
    def start(scenario: str, limits: dict[str, Any] | None = None,
              **settings: Any) -> ThreadedServer:
        server = start_gateway(
            provider_base_urls={"openai": f"{mock_url}/s/{scenario}/v1"},
            model_prices={f"openai/{MODEL}": {"input": PER_MILLION, "output": PER_MILLION}},
            usage_flush_interval_s=0.05, **key_store_settings(), **settings)
        return with_keys(server, {"gk-billing": {"name": "billing", "limits": limits or {}}})
    return start


def headers(**extra: str) -> dict[str, str]:
    return {"x-portkey-api-key": issued_key("gk-billing"), "x-portkey-provider": "openai",
            "authorization": "Bearer sk-provider", **extra}


def logged(gateway: ThreadedServer, request_id: str | None = None) -> dict[str, Any]:
    """The usage row of `request_id`, or of the only request logged, once it is written."""
    found: dict[str, Any] = {}
    with admin_client(gateway) as admin:
        def written() -> bool:
            if request_id is None:
                rows = admin.get("/admin/logs").json()["data"]
                if rows:
                    found.update(rows[0])
                return len(rows) == 1
            response = admin.get(f"/admin/logs/{request_id}")
            if response.status_code == 200:
                found.update(response.json())
            return response.status_code == 200
        assert wait_until(written, timeout=15), "no usage row was written"
    return found


def limits_settled(gateway: ThreadedServer) -> None:
    services = gateway.config.app.state.services
    assert wait_until(lambda: not services.recording.counting and not services.limiter.pending)


def read_stream_then_leave(gateway: ThreadedServer, body: dict[str, Any],
                           until: Callable[[dict[str, Any]], bool]) -> tuple[str, str]:
    """Read SSE events until `until(event)` holds, then close the connection; the request id
    and the text received."""
    text = []
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers=headers(),
                      json=body | {"stream": True}, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = orjson.loads(line[len("data: "):])
            for choice in event.get("choices") or ():
                text.append(choice.get("delta", {}).get("content") or "")
            if until(event):
                break
        return response.headers["x-portkey-request-id"], "".join(text)


def finished(event: dict[str, Any]) -> bool:
    return any(c.get("finish_reason") for c in event.get("choices") or ())


def test_a_stream_left_before_its_usage_chunk_is_billed_for_what_was_relayed(
        gateway_on, mock: MockUpstream):
    gateway = gateway_on("hold-usage")
    request_id, text = read_stream_then_leave(gateway, BODY, until=finished)
    assert text == "".join(STREAM_WORDS)  # the client got every content chunk
    row = logged(gateway, request_id)
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnect")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (ESTIMATED_PROMPT,
                                                                ESTIMATED_COMPLETION)
    assert row["completion_tokens"] > 0 and row["tokens_estimated"] is True
    expected = Decimal(str(PER_MILLION)) * (ESTIMATED_PROMPT + ESTIMATED_COMPLETION) / 10**6
    assert Decimal(row["cost_usd"]) == expected > 0
    assert wait_until(lambda: mock.cancelled_streams == 1)  # and the upstream was closed


@pytest.mark.parametrize(("scenario", "generated"), [
    ("tool-calls", TOOL_CALL[0] + "".join(TOOL_CALL[1])),
    ("reasoning", "".join(STREAM_WORDS)),
], ids=["tool-calls", "reasoning"])
def test_a_stream_without_content_left_before_its_usage_is_billed_for_what_was_relayed(
        gateway_on, mock: MockUpstream, scenario: str, generated: str):
    """Forcing a tool call (or asking a reasoning model) makes no stream free."""
    gateway = gateway_on(f"{scenario}+hold-usage")
    request_id, text = read_stream_then_leave(gateway, BODY, until=finished)
    assert text == ""  # no `content` reached the client: only tool calls or reasoning
    row = logged(gateway, request_id)
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnect")
    assert row["tokens_estimated"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (ESTIMATED_PROMPT,
                                                                count(generated))
    assert row["completion_tokens"] > 0
    expected = Decimal(str(PER_MILLION)) * (ESTIMATED_PROMPT + count(generated)) / 10**6
    assert Decimal(row["cost_usd"]) == expected > PROMPT_COST


def test_a_stream_left_after_a_chunk_without_text_is_billed_its_prompt(
        gateway_on, mock: MockUpstream):
    gateway = gateway_on("hold-after-role")
    request_id, text = read_stream_then_leave(gateway, BODY, until=lambda event: True)
    assert text == ""
    row = logged(gateway, request_id)
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnect")
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (
        ESTIMATED_PROMPT, 0, True)
    assert Decimal(row["cost_usd"]) == PROMPT_COST > 0


def test_a_stream_left_after_its_usage_arrived_records_the_upstream_counts(
        gateway_on, mock: MockUpstream):
    gateway = gateway_on("hold-done")
    request_id, _ = read_stream_then_leave(
        gateway, BODY | {"stream_options": {"include_usage": True}},
        until=lambda event: bool(event.get("usage")))
    row = logged(gateway, request_id)
    assert row["status_code"] == 499 and row["tokens_estimated"] is False
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        prompt_tokens(BODY), len(STREAM_WORDS))


def test_a_stream_that_failed_before_any_content_costs_nothing(gateway_on, mock_url):
    gateway = gateway_on("error-event")
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers(),
                          json=BODY | {"stream": True}, timeout=30)
    assert response.status_code >= 400
    row = logged(gateway, response.headers["x-portkey-request-id"])
    assert row["prompt_tokens"] is None and Decimal(row["cost_usd"]) == 0


@pytest.mark.parametrize(("limits", "code"), [
    ({"tpm": ESTIMATED_PROMPT + ESTIMATED_COMPLETION - 1}, "rate_limit_exceeded"),
    ({"budget_usd": 0.005}, "insufficient_quota"),
], ids=["tpm", "budget"])
def test_the_next_request_sees_the_charge_of_a_stream_left_mid_way(
        gateway_on, mock: MockUpstream, limits: dict[str, Any], code: str):
    fresh_minute()
    gateway = gateway_on("hold-usage", limits)
    read_stream_then_leave(gateway, BODY, until=finished)
    limits_settled(gateway)
    refused = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers(), json=BODY,
                         timeout=30)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == code


def send_and_leave(gateway: ThreadedServer, arrived: Callable[[], bool], **extra: str) -> None:
    """A raw HTTP client: POST a non-stream request, wait until `arrived()`, hang up."""
    body = orjson.dumps(BODY)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers(**extra).items())
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}"
               f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n")
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(request.encode() + body)
        assert wait_until(arrived), "the request never reached the upstream"


def test_a_non_stream_client_that_leaves_cancels_its_upstream_call_and_pays_its_prompt(
        gateway_on, mock: MockUpstream):
    fresh_minute()
    gateway = gateway_on("hang", {"tpm": ESTIMATED_PROMPT - 1})
    send_and_leave(gateway, lambda: mock.in_flight == 1)
    # The gateway closes its upstream connection at once, instead of waiting on the answer.
    assert wait_until(lambda: mock.abandoned == 1, timeout=2)
    row = logged(gateway)
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnect")
    # The upstream had the request and bills its work: the prompt, estimated, is billed.
    assert (row["prompt_tokens"], row["completion_tokens"], row["tokens_estimated"]) == (
        ESTIMATED_PROMPT, 0, True)
    assert Decimal(row["cost_usd"]) == PROMPT_COST > 0
    limits_settled(gateway)  # and charged to the key's limits
    refused = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers(), json=BODY,
                         timeout=10)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(("scenario", "backoff_ms", "billed"), [
    # Leaves while the gateway waits on the first attempt: its prompt is billed.
    ("status-503+slow-300", 50, True),
    # Leaves while the gateway sleeps before its first retry: the failed call costs nothing.
    ("status-503", 800, False),
], ids=["during-attempt", "during-backoff"])
def test_a_non_stream_client_that_leaves_stops_the_retries(
        gateway_on, mock: MockUpstream, scenario: str, backoff_ms: int, billed: bool):
    gateway = gateway_on(scenario, retry_backoff_base_ms=backoff_ms)
    config = orjson.dumps({"retry": {"attempts": 3, "on_status_codes": [503]}}).decode()
    send_and_leave(gateway, lambda: len(mock.requests) == 1, **{"x-portkey-config": config})
    row = logged(gateway)
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnect")
    assert row["latency_ms"] < backoff_ms + 300  # logged at once, not after the retries
    assert Decimal(row["cost_usd"]) == (PROMPT_COST if billed else 0)
    assert row["prompt_tokens"] == (ESTIMATED_PROMPT if billed else None)
    # Every retry would have reached the mock well within this window.
    assert not wait_until(lambda: len(mock.requests) > 1, timeout=1.5)
