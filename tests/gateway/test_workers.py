"""`serve --workers N`: metrics summed across worker processes; request ids unique."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.metrics import Metrics, Sources
from gateway.routing.breaker import Breakers
from gateway.settings import Settings
from tests.support.gateway_process import GatewayProcess, gateway_env

# One worker process's share: record a single finished request into the shared directory.
_RECORD_ONE = """
import sys
from starlette.datastructures import Headers
from gateway.contracts.outcome import Outcome
from gateway.contracts.request import ParsedRequest
from gateway.observability.metrics import Metrics, Sources
from gateway.routing.breaker import Breakers
from gateway.settings import Settings
from providers.base import Endpoint
request = ParsedRequest(request_id="r", trace_id="t", endpoint=Endpoint.CHAT, method="POST",
                        path="chat/completions", query="", headers=Headers(), raw_body=b"",
                        body={"model": "m"}, provider="openai")
outcome = Outcome(request, answered_by="openai", status=200, usage={"prompt_tokens": 3})
settings = Settings(_env_file=None, prometheus_multiproc_dir=sys.argv[1])
Metrics(settings, Sources(Breakers(3, 30, 30))).record(outcome)
"""


def totals(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def test_samples_from_several_processes_are_summed(tmp_path):
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "PATH": ""}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _RECORD_ONE, str(shared)], env=env, check=True)
    settings = Settings(_env_file=None, prometheus_multiproc_dir=shared)
    scraped = Metrics(settings, Sources(Breakers(3, 30, 30))).exposition()
    sums = totals(scraped.decode())
    assert sums["gateway_requests_total"] == 2
    assert sums["gateway_tokens_total"] == 6


@pytest.fixture
def two_workers(tmp_path, mock_url):
    process = GatewayProcess(gateway_env(tmp_path, mock_url), "--workers", "2", cwd=tmp_path)
    yield process.start()
    assert process.stop() == 0, process.output()


def test_two_workers_count_every_request_and_ids_are_unique(two_workers):
    body = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}
    headers = {"x-portkey-provider": "openai", "authorization": "Bearer sk-test"}
    ids = set()
    sent = 24
    for _ in range(sent):  # a fresh connection each time, so both workers take some
        response = httpx.post(f"{two_workers.url}/v1/chat/completions", json=body,
                              headers=headers)
        assert response.status_code == 200, response.text
        ids.add(response.headers["x-portkey-request-id"])
    assert len(ids) == sent
    for _ in range(6):  # whichever worker answers the scrape reports everyone's requests
        sums = totals(httpx.get(f"{two_workers.url}/metrics").text)
        assert sums["gateway_requests_total"] == sent
        assert sums["gateway_tokens_total"] == sent * (3 + 6)


def test_workers_setting_is_read(tmp_path, mock_url):
    assert Settings(_env_file=None, workers=3).workers == 3
    assert json.loads(json.dumps(gateway_env(tmp_path, mock_url)))["GATEWAY_LOG_LEVEL"]
