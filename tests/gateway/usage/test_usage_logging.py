"""Usage rows in the real Postgres: one per request, exact tokens and cost, nothing lost.

The outage tests reach Postgres through a TCP relay that the test cuts and restores.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from portkey_ai import createHeaders

from gateway.usage.pricing import PriceBook, load_table
from gateway.usage.spool import Spool
from tests.support.databases import ADMIN_TOKEN, admin_client, query, require_postgres
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream, prompt_tokens
from tests.support.servers import ThreadedServer
from tests.support.tcp_relay import TcpRelay

MESSAGES = [{"role": "user", "content": "how many tokens is this prompt"}]
MODEL = "gpt-4o-mini"
PRICE = PriceBook(load_table()).price("openai", MODEL)


@pytest.fixture
def postgres_url() -> str:
    url = require_postgres()
    import os

    from gateway.cli.main import main
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        assert main(["migrate"]) == 0
    finally:
        if previous is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = previous
    return url


@pytest.fixture
def logging_gateway(start_gateway, postgres_url, tmp_path) -> Callable[..., ThreadedServer]:
    def start(**overrides: Any) -> ThreadedServer:
        values = {"database_url": postgres_url, "admin_token": ADMIN_TOKEN,
                  "usage_flush_interval_s": 0.05, "spool_dir": tmp_path / "spool",
                  "key_cache_ttl": 1.0}
        return start_gateway(**(values | overrides))
    return start


def rows(url: str, where: str = "true", **params: Any) -> list[dict[str, Any]]:
    return query(url, f"SELECT * FROM request_logs WHERE {where} ORDER BY created_at", **params)


def wait_for_rows(url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = rows(url)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def client(gateway: ThreadedServer, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-x", base_url=f"{gateway.url}/v1", max_retries=0,
                         default_headers=createHeaders(provider="openai", **headers))


def expected_cost(prompt: int, completion: int) -> Decimal:
    assert PRICE is not None
    return PRICE.cost(prompt, completion)


def test_stream_and_non_stream_each_write_one_exact_row(logging_gateway, mock: MockUpstream,
                                                        postgres_url):
    gateway = logging_gateway()
    sdk = client(gateway, metadata={"team": "search"}, trace_id="trace-usage-1")
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    plain_id = raw.headers["x-portkey-request-id"]
    with sdk.chat.completions.with_streaming_response.create(
            model=MODEL, messages=MESSAGES, stream=True) as streamed:
        list(streamed.parse())
        stream_id = streamed.headers["x-portkey-request-id"]
    found = {row["id"]: row for row in wait_for_rows(postgres_url, 2)}
    assert set(found) == {plain_id, stream_id}
    prompt = prompt_tokens({"messages": MESSAGES})
    for request_id, stream in ((plain_id, False), (stream_id, True)):
        row = found[request_id]
        assert (row["stream"], row["status_code"], row["provider"], row["model"]) == (
            stream, 200, "openai", MODEL)
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
            prompt, len(STREAM_WORDS), prompt + len(STREAM_WORDS))
        assert row["tokens_estimated"] is False
        assert row["cost_usd"] == expected_cost(prompt, len(STREAM_WORDS))
        assert row["metadata"] == {"team": "search"} and row["trace_id"] == "trace-usage-1"
        assert row["latency_ms"] > 0 and row["ttfb_ms"] is not None
        assert row["attempts"][0]["status"] == 200
    with admin_client(gateway) as admin:
        detail = admin.get(f"/admin/logs/{stream_id}").json()
    assert detail["prompt_tokens"] == prompt and detail["completion_tokens"] == len(STREAM_WORDS)
    assert Decimal(detail["cost_usd"]) == expected_cost(prompt, len(STREAM_WORDS))
    assert {"cached_tokens", "latency_ms", "ttfb_ms", "status_code", "provider", "model"} <= set(
        detail)


def test_failed_requests_are_logged_too(logging_gateway, mock: MockUpstream, postgres_url,
                                        mock_url):
    gateway = logging_gateway()
    sdk = client(gateway, custom_host=f"{mock_url}/s/status-503/v1")
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
    (row,) = wait_for_rows(postgres_url, 1)
    assert row["status_code"] == 503 and row["error_type"] == "server_error"
    assert "scripted failure 503" in row["error_message"]
    assert row["prompt_tokens"] is None and row["cost_usd"] == 0


def test_unknown_model_costs_null_not_zero(logging_gateway, mock: MockUpstream, postgres_url):
    gateway = logging_gateway()
    client(gateway).chat.completions.create(model="no-such-model", messages=MESSAGES)
    (row,) = wait_for_rows(postgres_url, 1)
    assert row["prompt_tokens"] > 0 and row["cost_usd"] is None
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'gateway_unpriced_requests_total{model="no-such-model",provider="openai"} 1.0' in metrics


def test_missing_usage_is_estimated_and_marked(logging_gateway, mock: MockUpstream,
                                               postgres_url, mock_url):
    gateway = logging_gateway()
    client(gateway, custom_host=f"{mock_url}/s/no-usage/v1").chat.completions.create(
        model=MODEL, messages=MESSAGES)
    (row,) = wait_for_rows(postgres_url, 1)
    assert row["tokens_estimated"] is True
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


def _burst(gateway: ThreadedServer, total: int, on_progress: Callable[[int], None]) -> list[int]:
    async def run() -> list[int]:
        statuses: list[int] = []
        semaphore = asyncio.Semaphore(32)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
            async def one() -> None:
                async with semaphore:
                    response = await http.post(
                        "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES},
                        headers={"x-portkey-provider": "openai", "authorization": "Bearer k"})
                statuses.append(response.status_code)
                on_progress(len(statuses))
            await asyncio.gather(*(one() for _ in range(total)))
        return statuses
    return asyncio.run(run())


def test_database_outage_during_a_burst_loses_nothing(logging_gateway, mock: MockUpstream,
                                                      postgres_url):
    parts = urlsplit(postgres_url)
    relay = TcpRelay((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    try:
        relayed = postgres_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{relay.port}")
        gateway = logging_gateway(database_url=relayed)

        def outage(done: int) -> None:
            if done == 200:
                relay.stop()  # Postgres "goes away" a fifth of the way in
            elif done == 700:
                relay.start()

        statuses = _burst(gateway, 1000, outage)
        assert statuses == [200] * 1000  # requests never wait on, or fail with, the database
        found = wait_for_rows(postgres_url, 1000, timeout=120)
        assert len(found) == 1000
        assert len({row["id"] for row in found}) == 1000
        assert gateway.config.app.state.services.usage.spooled_rows == 0
    finally:
        relay.close()


def test_restarted_gateway_replays_spooled_rows(logging_gateway, mock: MockUpstream,
                                                postgres_url, tmp_path):
    parts = urlsplit(postgres_url)
    relay = TcpRelay((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    try:
        relayed = postgres_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{relay.port}")
        first = logging_gateway(database_url=relayed)
        sdk = client(first)
        sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # auth state now known
        assert len(wait_for_rows(postgres_url, 1)) == 1
        relay.stop()
        for _ in range(5):
            sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
        first.stop()  # shutdown: the writer cannot reach the database, so the rows stay spooled
        spooled = Spool(tmp_path / "spool").pending_rows()  # its files, not the journal's
        assert spooled == 5 and len(rows(postgres_url)) == 1
        relay.start()
        logging_gateway(database_url=relayed)  # a new gateway process replays the spool
        assert len(wait_for_rows(postgres_url, 6)) == 6
    finally:
        relay.close()


def test_analytics_totals_equal_the_sums_of_the_rows(logging_gateway, mock: MockUpstream,
                                                     postgres_url, mock_url):
    gateway = logging_gateway()
    client(gateway).chat.completions.create(model=MODEL, messages=MESSAGES)
    client(gateway).chat.completions.create(model="gpt-4o", messages=MESSAGES * 2)
    list(client(gateway).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    with pytest.raises(openai.InternalServerError):
        client(gateway, custom_host=f"{mock_url}/s/status-500/v1").chat.completions.create(
            model=MODEL, messages=MESSAGES)
    found = wait_for_rows(postgres_url, 4)
    with admin_client(gateway) as admin:
        by_model = admin.get("/admin/analytics", params={"group_by": "model"}).json()
        by_day = admin.get("/admin/analytics", params={"group_by": "day"}).json()
        page = admin.get("/admin/logs", params={"limit": 2, "model": MODEL}).json()
        rest = admin.get("/admin/logs", params={"limit": 2, "model": MODEL,
                                                "cursor": page["next_cursor"]}).json()
        bad = admin.get("/admin/analytics", params={"group_by": "colour"})
    totals = by_model["totals"]
    assert totals["requests"] == len(found) == 4
    assert totals["errors"] == sum(1 for r in found if r["status_code"] >= 400) == 1
    assert totals["total_tokens"] == sum(r["total_tokens"] or 0 for r in found)
    assert Decimal(totals["cost_usd"]) == sum(r["cost_usd"] or 0 for r in found)
    groups = {g["group"]: g for g in by_model["data"]}
    assert groups[MODEL]["requests"] == 3 and groups["gpt-4o"]["requests"] == 1
    assert sum(Decimal(g["cost_usd"]) for g in by_model["data"]) == Decimal(totals["cost_usd"])
    assert [g["requests"] for g in by_day["data"]] == [4]
    assert groups[MODEL]["p50_latency_ms"] <= groups[MODEL]["p95_latency_ms"]
    assert len(page["data"]) == 2 and len(rest["data"]) == 1 and rest["next_cursor"] is None
    assert {r["id"] for r in page["data"] + rest["data"]} == {
        r["id"] for r in found if r["model"] == MODEL}
    assert bad.status_code == 400


def test_logs_filter_by_metadata_status_and_trace(logging_gateway, mock: MockUpstream,
                                                  postgres_url, mock_url):
    gateway = logging_gateway()
    client(gateway, metadata={"env": "prod"}).chat.completions.create(model=MODEL,
                                                                      messages=MESSAGES)
    client(gateway, metadata={"env": "dev"}, trace_id="t-dev").chat.completions.create(
        model=MODEL, messages=MESSAGES)
    wait_for_rows(postgres_url, 2)
    with admin_client(gateway) as admin:
        prod = admin.get("/admin/logs", params={"metadata.env": "prod"}).json()["data"]
        dev = admin.get("/admin/logs", params={"trace_id": "t-dev"}).json()["data"]
        ok = admin.get("/admin/logs", params={"status": 200, "provider": "openai"}).json()
        anonymous = httpx.get(f"{gateway.url}/admin/logs")
    assert [r["metadata"] for r in prod] == [{"env": "prod"}]
    assert [r["metadata"] for r in dev] == [{"env": "dev"}]
    assert len(ok["data"]) == 2
    assert anonymous.status_code == 401


NO_CARDS = {"id": "no-cards", "deny": True,
            "default.regexMatch": {"rule": r"\d{4} \d{4} \d{4} \d{4}", "not": True}}
SHORT_ANSWERS = {"id": "short-answers", "default.wordCount": {"maxWords": 3}}  # mock: 6 words


def test_guardrail_verdicts_are_logged_filtered_and_counted(logging_gateway, postgres_url):
    """A request whose input guardrail denied it (446), one whose output guardrail failed
    without deny (246), one whose guardrail passed, one without guardrails: each row says so,
    /admin/logs filters by failure, and /metrics counts the checks."""
    gateway = logging_gateway()

    def guarded(**hooks: Any) -> openai.OpenAI:
        config = {"provider": "openai", "api_key": "sk-x", **hooks}
        return openai.OpenAI(api_key="sk-x", base_url=f"{gateway.url}/v1", max_retries=0,
                             default_headers=createHeaders(config=config))

    def send(chat: openai.OpenAI, text: str) -> tuple[int, str]:
        raw = chat.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": text}])
        return raw.status_code, raw.headers["x-portkey-request-id"]

    card = "pay with 4111 1111 1111 1111"
    with pytest.raises(openai.APIStatusError) as denied:
        send(guarded(input_guardrails=[NO_CARDS]), card)
    assert denied.value.status_code == 446
    denied_id = denied.value.response.headers["x-portkey-request-id"]
    flagged = send(guarded(output_guardrails=[SHORT_ANSWERS]), "hello")
    passed = send(guarded(input_guardrails=[NO_CARDS]), "no numbers here")
    plain = send(client(gateway), "hello")
    assert [flagged[0], passed[0], plain[0]] == [246, 200, 200]
    wait_for_rows(postgres_url, 4)
    with admin_client(gateway) as admin:
        failures = admin.get("/admin/logs", params={"hooks_failed": "true"}).json()["data"]
        others = admin.get("/admin/logs", params={"hooks_failed": "false"}).json()["data"]
        bad = admin.get("/admin/logs", params={"hooks_failed": "maybe"})
        entry = admin.get(f"/admin/logs/{denied_id}").json()
    assert {r["id"] for r in failures} == {denied_id, flagged[1]}
    assert {r["id"] for r in others} == {passed[1], plain[1]}
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "hooks_failed"
    assert entry["status_code"] == 446 and entry["hooks_failed"] is True
    [hook] = entry["hook_results"]["before_request_hooks"]
    assert (hook["id"], hook["verdict"], hook["deny"]) == ("no-cards", False, True)
    assert [(c["id"], c["verdict"]) for c in hook["checks"]] == [("default.regexMatch", False)]
    assert entry["hook_results"]["after_request_hooks"] == []
    assert "4111" not in str(entry)  # the check saw the card number; the row does not keep it
    by_id = {r["id"]: r for r in others + failures}
    assert by_id[flagged[1]]["hook_results"]["after_request_hooks"][0]["id"] == "short-answers"
    assert by_id[passed[1]]["hooks_failed"] is False
    assert (by_id[plain[1]]["hook_results"], by_id[plain[1]]["hooks_failed"]) == (None, None)
    metrics = httpx.get(f"{gateway.url}/metrics").text
    for line in ('gateway_guardrail_checks_total{check="default.regexMatch",verdict="fail"} 1.0',
                 'gateway_guardrail_checks_total{check="default.regexMatch",verdict="pass"} 1.0',
                 'gateway_guardrail_checks_total{check="default.wordCount",verdict="fail"} 1.0'):
        assert line in metrics.splitlines(), line
