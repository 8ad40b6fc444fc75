"""The console in a real headless Chromium: log in, find a request made through the gateway
in the logs and open it, create a virtual key and use it, see an invalid config rejected
inline, screenshot the overview, log out."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image

from tests.support.browser import ARTIFACTS
from tests.support.databases import ADMIN_TOKEN
from tests.support.mock_upstream import MockUpstream
from tests.support.servers import ThreadedServer

VK_SECRET = "sk-browser-made-secret-4242"


@pytest.fixture
def gateway(keyed_gateway: Callable[..., ThreadedServer]) -> ThreadedServer:
    """On SQLite and on Postgres, with a master key and the admin token."""
    return keyed_gateway()


def _client(gateway: ThreadedServer, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-client-key", base_url=f"{gateway.url}/v1", max_retries=0,
                         default_headers={f"x-portkey-{k}": v for k, v in headers.items()})


def _chat(client: openai.OpenAI) -> str:
    """One chat completion; returns the gateway's request id."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello console"}])
    assert raw.parse().choices[0].message.content
    return str(raw.headers["x-portkey-request-id"])


def _wait_for_row(page: Any, url: str, request_id: str) -> Any:
    """Reload the logs page until the usage writer has stored the request."""
    row = page.locator(f'tr[data-id="{request_id}"]')
    deadline = time.monotonic() + 30
    while True:
        page.goto(url)
        if row.count() or time.monotonic() > deadline:
            return row
        time.sleep(0.5)


def distinct_colours(path: Path) -> int:
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or [])


def test_console_in_a_real_browser(gateway: ThreadedServer, mock: MockUpstream,
                                   browser_page: Any, database_url: str) -> None:
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    page, base = browser_page, gateway.url

    # Log in: an unauthenticated visit lands on the form, then on the page it asked for.
    page.goto(f"{base}/console/logs")
    assert "/console/login" in page.url
    page.fill("#token", ADMIN_TOKEN)
    page.click("#login")
    page.wait_for_url(f"{base}/console/logs")
    assert page.locator("h1").inner_text() == "Logs"

    # A request through the gateway shows up in the logs table; its detail has the attempt.
    request_id = _chat(_client(gateway, provider="openai",
                               metadata='{"suite": "browser"}'))
    row = _wait_for_row(page, f"{base}/console/logs", request_id)
    assert row.count() == 1, "the request never reached the logs table"
    assert "gpt-4o-mini" in row.inner_text() and "suite=browser" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"{base}/console/logs/{request_id}")
    attempts = page.locator("#attempts").inner_text()
    assert "openai" in attempts and "200" in attempts
    assert "total" in page.locator("#tokens").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-log-detail-{database}.png"), full_page=True)

    # Create a virtual key and an API key (virtual keys need one) in the console, then use
    # them through the OpenAI SDK.
    page.goto(f"{base}/console/api-keys")
    page.locator('#create-api-key input[name="name"]').fill("browser caller")
    page.locator('#create-api-key button[type="submit"]').click()
    api_key = page.locator("#new-key").inner_text().strip()
    page.goto(f"{base}/console/api-keys")
    assert api_key not in page.content()  # shown once only
    page.goto(f"{base}/console/virtual-keys")
    form = page.locator("#create-virtual-key")
    form.locator('input[name="name"]').fill("browser key")
    form.locator('select[name="provider"]').select_option("openai")
    form.locator('input[name="key"]').fill(VK_SECRET)
    form.locator('input[name="rpm"]').fill("100")
    form.locator('button[type="submit"]').click()
    slug = page.locator("#new-slug").inner_text()
    assert slug == "browser-key"
    assert VK_SECRET not in page.content()
    mock.reset()
    second = _chat(_client(gateway, **{"virtual-key": slug, "api-key": api_key}))
    assert mock.requests[-1].headers["authorization"] == f"Bearer {VK_SECRET}"
    page.goto(f"{base}/console/virtual-keys")
    assert page.locator("#virtual-keys tr[data-slug]").count() == 1
    assert "requests / minute: 1 of 100" in page.locator(f'tr[data-slug="{slug}"]').inner_text()
    page.screenshot(path=str(ARTIFACTS / f"console-virtual-keys-{database}.png"), full_page=True)

    # An invalid config is rejected inline, naming each problem; a valid one is saved.
    page.goto(f"{base}/console/configs/new")
    page.fill('input[name="name"]', "broken")
    page.fill("#config-text", '{"strategy": {"mode": "sideways"}, '
                              '"targets": [{"provider": "no-such-provider"}]}')
    page.click("#save-config")
    problems = page.locator("#problems")
    assert problems.is_visible()
    assert "strategy.mode" in problems.inner_text()
    assert "no-such-provider" in problems.inner_text()
    assert page.locator("#config-text").input_value().startswith('{"strategy"')
    page.fill("#config-text", f'{{"virtual_key": "{slug}"}}')
    page.click("#save-config")
    page.wait_for_url(f"{base}/console/configs/pc-broken-*")
    assert "Version 1 (current)" in page.content()

    # A request whose output guardrail failed (246): the logs filtered to guardrail failures
    # show it, and its detail lists the hook and its check with their verdicts.
    flagged = _chat(_client(gateway, **{"api-key": api_key}, config=json.dumps({
        "provider": "openai", "api_key": "sk-client-key",
        "output_guardrails": [{"id": "short-answers", "default.wordCount": {"maxWords": 2}}]})))
    row = _wait_for_row(page, f"{base}/console/logs?hooks_failed=true", flagged)
    assert row.count() == 1 and page.locator("tr[data-id]").count() == 1
    row.locator("a").click()
    page.wait_for_url(f"{base}/console/logs/{flagged}")
    check = page.locator('#hook-results tr[data-check="default.wordCount"]').inner_text()
    assert "output" in check and "short-answers" in check and "failed" in check
    assert "fail" in check.split("default.wordCount", 1)[1]
    page.screenshot(path=str(ARTIFACTS / f"console-hook-results-{database}.png"), full_page=True)

    # The overview, screenshotted for people to look at, and not blank. The usage writer
    # sends rows in batches (at most a second late): wait for the second request's row.
    assert _wait_for_row(page, f"{base}/console/logs", second).count() == 1
    page.goto(f"{base}/console/?range=24h&split=virtual_key")
    assert page.locator("#total-requests").inner_text() == "3"
    assert page.locator("#guardrail-failures").inner_text() == "1"
    assert page.locator("svg.chart").count() == 4
    shot = ARTIFACTS / f"console-overview-{database}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert distinct_colours(shot) >= 8, "the overview screenshot is blank"

    # Log out: the session is gone.
    page.click("#logout")
    page.wait_for_url(f"{base}/console/login")
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url
