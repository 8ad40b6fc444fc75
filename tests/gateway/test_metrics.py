"""`GET /metrics` moves as requests succeed, fail, retry, fall back and open circuits."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from portkey_ai import createHeaders
from prometheus_client.parser import text_string_to_metric_families
from starlette.datastructures import Headers

from gateway.contracts.outcome import Outcome
from gateway.contracts.request import ParsedRequest
from gateway.guardrails.results import CheckError, CheckResult, HookResult, PhaseResult
from gateway.observability.metrics import Metrics, Sources
from gateway.routing.breaker import Breakers
from gateway.settings import Settings
from gateway.usage.spool import Spool
from providers.base import Endpoint
from tests.support.mock_upstream import MockUpstream
from tests.support.waiting import wait_until

MESSAGES = [{"role": "user", "content": "count my words"}]  # 3 prompt tokens at the mock


def scrape(gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    response = httpx.get(f"{gateway.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def families(gateway) -> set[str]:
    text = httpx.get(f"{gateway.url}/metrics").text
    return {family.name for family in text_string_to_metric_families(text)}


def client(gateway, config: dict | None = None, provider: str = "openai") -> openai.OpenAI:
    headers = createHeaders(config=json.dumps(config)) if config else createHeaders(
        provider=provider)
    return openai.OpenAI(api_key="sk-test", base_url=f"{gateway.url}/v1", max_retries=0,
                         default_headers=headers)


def target(mock_url: str, scenario: str) -> dict:
    return {"provider": "openai", "api_key": "sk-test",
            "custom_host": f"{mock_url}/s/{scenario}/v1"}


@pytest.fixture
def fast_gateway(start_gateway):
    return start_gateway(retry_backoff_base_ms=5, retry_backoff_max_ms=20,
                         circuit_failure_threshold=2, circuit_window_s=60,
                         circuit_cooldown_s=60)


def test_every_metric_is_exposed_before_any_request(fast_gateway):
    names = families(fast_gateway)
    assert {
        "gateway_requests", "gateway_request_duration_seconds",
        "gateway_time_to_first_byte_seconds", "gateway_overhead_seconds", "gateway_tokens",
        "gateway_cost_usd", "gateway_retries", "gateway_fallbacks",
        "gateway_circuit_breaker_opens", "gateway_cache_hits", "gateway_cache_misses",
        "gateway_limit_rejections", "gateway_redis_failures", "gateway_usage_queue_depth",
        "gateway_usage_spooled_rows", "gateway_guardrail_checks",
    } <= names


def test_successes_count_requests_tokens_and_latency(fast_gateway, mock: MockUpstream):
    before = scrape(fast_gateway)
    gpt = client(fast_gateway)
    gpt.chat.completions.create(model="gpt-x", messages=MESSAGES)
    chunks = list(gpt.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True))
    assert chunks
    labels = {"provider": "openai", "model": "gpt-x"}
    # A stream is recorded a loop turn or two after its last byte went out.
    wait_until(lambda: value(scrape(fast_gateway), "gateway_request_duration_seconds_count",
                             **labels) == 2, timeout=5, interval=0.05)
    after = scrape(fast_gateway)
    assert value(after, "gateway_requests_total", status="200", **labels) - value(
        before, "gateway_requests_total", status="200", **labels) == 2
    # The mock counts words: 3 prompt tokens and 6 completion tokens per request.
    assert value(after, "gateway_tokens_total", type="prompt", **labels) == 6
    assert value(after, "gateway_tokens_total", type="completion", **labels) == 12
    assert value(after, "gateway_request_duration_seconds_count", **labels) == 2
    assert value(after, "gateway_time_to_first_byte_seconds_count", **labels) == 2
    assert value(after, "gateway_overhead_seconds_count", provider="openai") == 1  # non-stream
    assert value(after, "gateway_retries_total", provider="openai") == 0


def test_failures_are_counted_by_status(fast_gateway, mock_url):
    gpt = client(fast_gateway, target(mock_url, "status-400"))
    with pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(model="gpt-x", messages=MESSAGES)
    samples = scrape(fast_gateway)
    assert value(samples, "gateway_requests_total", provider="openai", model="gpt-x",
                 status="400") == 1
    assert value(samples, "gateway_requests_total", provider="openai", model="gpt-x",
                 status="200") == 0


def test_retries_and_fallbacks_are_counted(fast_gateway, mock_url):
    retrying = {"retry": {"attempts": 3}, **target(mock_url, "fail-first-2+status-503")}
    client(fast_gateway, retrying).chat.completions.create(model="gpt-x", messages=MESSAGES)
    falling_back = {"strategy": {"mode": "fallback"},
                    "targets": [target(mock_url, "status-502"), target(mock_url, "ok")]}
    client(fast_gateway, falling_back).chat.completions.create(model="gpt-x",
                                                               messages=MESSAGES)
    samples = scrape(fast_gateway)
    assert value(samples, "gateway_retries_total", provider="openai") == 2
    assert value(samples, "gateway_fallbacks_total", provider="openai") == 1
    assert value(samples, "gateway_requests_total", provider="openai", model="gpt-x",
                 status="200") == 2


def test_circuit_breaker_opens_are_counted(fast_gateway, mock_url):
    assert value(scrape(fast_gateway), "gateway_circuit_breaker_opens_total") == 0
    gpt = client(fast_gateway, target(mock_url, "status-503"))
    for _ in range(2):  # threshold 2: the second failure opens the circuit
        with pytest.raises(openai.InternalServerError):
            gpt.chat.completions.create(model="gpt-x", messages=MESSAGES)
    assert value(scrape(fast_gateway), "gateway_circuit_breaker_opens_total") == 1


def test_cache_and_limit_counters_exist_at_zero(fast_gateway):
    # Filled once the cache and limits land (issue 8): ctx.cache_status, limiter.rejected.
    samples = scrape(fast_gateway)
    assert ("gateway_cache_hits_total", ()) in samples
    assert ("gateway_cache_misses_total", ()) in samples
    assert value(samples, "gateway_cache_hits_total") == 0
    assert ("gateway_redis_failures_total", ()) in samples


def test_spooled_rows_gauge_reads_the_spool_directory(start_gateway, tmp_path):
    spool = tmp_path / "ops-spool"
    spool.mkdir()
    # Rows a dead worker left waiting (a pid that cannot exist), and rows set aside as refused.
    (spool / "usage-4194305.jsonl").write_bytes(b'{"a": 1}\n{"a": 2}\n')
    (spool / "replay-4194305-00000000000000000001-usage-4194305.jsonl").write_bytes(b'{"a": 3}\n')
    (spool / "rejected-4194305.jsonl").write_bytes(b'{"a": 4}\n')
    assert Spool(spool).pending_rows() == 3
    gateway = start_gateway(spool_dir=spool, usage_log=False)  # nothing replays them here
    assert value(scrape(gateway), "gateway_usage_spooled_rows") == 3


def test_metrics_can_be_turned_off(start_gateway):
    gateway = start_gateway(metrics_enabled=False)
    response = httpx.get(f"{gateway.url}/metrics")
    assert response.status_code == 404
    assert "GATEWAY_METRICS_ENABLED" in response.json()["error"]["message"]


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_counts_kept_by_the_cache_limiter_and_usage_writer_are_read(tmp_path):
    # The attribute names the Breakers, ResponseCache, the Limiter and the UsageLog keep.
    limiter = SimpleNamespace(rejected={"rate_limit_exceeded": 3}, failed_open=1,
                              failed_closed=0, settle_failures=0)
    parts: dict[str, Any] = {"breakers": SimpleNamespace(opens=2), "limiter": limiter,
                             "usage": SimpleNamespace(depth=4, spool=Spool(tmp_path)),
                             "cache": SimpleNamespace(unavailable=2)}
    sources = Sources(**parts)
    metrics = Metrics(Settings(_env_file=None, spool_dir=tmp_path), sources)
    metrics.refresh()
    limiter.rejected["rate_limit_exceeded"] = 5
    limiter.failed_closed = 1
    metrics.refresh()
    metrics.refresh()  # no change: no double counting
    assert _sample(metrics, "gateway_circuit_breaker_opens_total") == 2
    assert _sample(metrics, "gateway_limit_rejections_total", code="rate_limit_exceeded") == 5
    assert _sample(metrics, "gateway_limit_rejections_total", code="limits_unavailable") == 1
    assert _sample(metrics, "gateway_redis_failures_total") == 2 + 1 + 1
    assert _sample(metrics, "gateway_usage_queue_depth") == 4


def finished(**fields) -> Outcome:
    """A request to openai for model m, answered with 200, with `fields` set on its outcome."""
    outcome = Outcome(ParsedRequest(
        request_id="r", trace_id="t", endpoint=Endpoint.CHAT, method="POST",
        path="chat/completions", query="", headers=Headers({}), raw_body=b"{}",
        body={"model": "m"}, provider="openai"))
    outcome.answered_by, outcome.status, outcome.ttfb_ms = "openai", 200, 1.0
    for name, field_value in fields.items():
        setattr(outcome, name, field_value)
    return outcome


def idle_metrics(tmp_path) -> Metrics:
    return Metrics(Settings(_env_file=None, spool_dir=tmp_path), Sources(Breakers(3, 30, 30)))


def test_cache_status_and_cost_on_the_context_are_counted(tmp_path):
    metrics = idle_metrics(tmp_path)
    for status in ("HIT", "MISS", "REFRESH", "DISABLED", None, "HIT"):
        metrics.record(finished(usage=None, cache_status=status, cost_usd=Decimal("0.25")))
    assert _sample(metrics, "gateway_cache_hits_total") == 2
    assert _sample(metrics, "gateway_cache_misses_total") == 1
    assert _sample(metrics, "gateway_cost_usd_total", provider="openai", model="m") == 1.5


def test_unpriced_counts_only_requests_the_usage_log_priced(tmp_path):
    """With the usage log off nothing is priced: cost None then is no finding."""
    metrics = idle_metrics(tmp_path)
    for priced in (False, True, True):
        metrics.record(finished(usage={"prompt_tokens": 3, "completion_tokens": 2},
                                cache_status=None, cost_usd=None, priced=priced))
    assert _sample(metrics, "gateway_unpriced_requests_total", provider="openai",
                   model="m") == 2


def test_guardrail_checks_are_counted_by_id_and_verdict(tmp_path):
    """Both phases of the target last tried; an error is an error whatever fail_on_error
    says; a skipped hook has no checks; an id outside the built-ins cannot add a series."""
    def check(check_id: str, verdict: bool, error: CheckError | None = None) -> CheckResult:
        return CheckResult(check_id, verdict, None, error, 0.1, "2026-12-08T12:00:00.000Z")

    before = PhaseResult((HookResult("in", "guardrail", verdict=False, deny=True, checks=(
        check("default.contains", False), check("default.wordCount", True),
        check("default.webhook", False, CheckError("timed out")))),
        HookResult("skip", "guardrail", skipped=True)))
    after = PhaseResult((HookResult("out", "guardrail", checks=(
        check("default.contains", True), check("plugin.unknown", True),
        check("plugin.another", True))),))
    metrics = idle_metrics(tmp_path)
    metrics.record(finished(hooks_before=before, hooks_after=after))
    metrics.record(finished(hooks_before=before))
    metrics.record(finished())  # no guardrails: nothing counted
    metrics.refresh()  # as a scrape does
    counted = {(s.labels["check"], s.labels["verdict"]): s.value
               for family in metrics.registry.collect() if family.name ==
               "gateway_guardrail_checks" for s in family.samples if s.name.endswith("_total")}
    assert counted == {("default.contains", "fail"): 2, ("default.contains", "pass"): 1,
                       ("default.wordCount", "pass"): 2, ("default.webhook", "error"): 2,
                       ("other", "pass"): 2}  # two ids outside, one series
    # Counted once however often refreshed; what came after the last scrape goes in at exit.
    metrics.refresh()
    metrics.record(finished(hooks_before=before))
    metrics.close()
    assert _sample(metrics, "gateway_guardrail_checks_total", check="default.contains",
                   verdict="fail") == 3
    assert _sample(metrics, "gateway_guardrail_checks_total", check="other",
                   verdict="pass") == 2


def test_async_hook_checks_are_counted_when_they_finish(tmp_path):
    """The runner's `on_async`: an async hook's checks, after its request was recorded."""
    metrics = idle_metrics(tmp_path)
    metrics.count_late_hook("beforeRequestHook", HookResult("late", "guardrail", False, checks=(
        CheckResult("default.contains", False, None, None, 0.1, "2026-12-08T12:00:00.000Z"),
        CheckResult("default.wordCount", True, None, None, 0.1, "2026-12-08T12:00:00.000Z"))))
    metrics.refresh()
    assert _sample(metrics, "gateway_guardrail_checks_total", check="default.contains",
                   verdict="fail") == 1
    assert _sample(metrics, "gateway_guardrail_checks_total", check="default.wordCount",
                   verdict="pass") == 1


def test_a_gateways_async_hooks_are_counted_and_a_failure_logged(fast_gateway, caplog):
    """Through a real gateway: the answer is a plain 200 without the async hook's results,
    whose failing check reaches /metrics once the hook has run."""
    config = {"provider": "openai", "api_key": "sk-test", "input_guardrails": [
        {"id": "late-words", "async": True,
         "default.contains": {"words": ["count"], "operator": "none"}}]}
    caplog.set_level(logging.INFO, logger="gateway.guardrails")
    labels = {"check": "default.contains", "verdict": "fail"}
    before = value(scrape(fast_gateway), "gateway_guardrail_checks_total", **labels)
    raw = client(fast_gateway, config).chat.completions.with_raw_response.create(
        model="gpt-x", messages=MESSAGES)  # "count my words" holds "count": a failure
    assert raw.http_response.status_code == 200
    assert "hook_results" not in raw.http_response.json()
    assert wait_until(lambda: value(scrape(fast_gateway), "gateway_guardrail_checks_total",
                                    **labels) == before + 1, timeout=5, interval=0.05)
    assert any("'late-words' failed: default.contains" in r.getMessage() for r in caplog.records)
