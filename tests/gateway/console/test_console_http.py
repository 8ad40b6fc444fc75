"""The console over plain HTTP: login, sessions, CSRF, the pages, and that no page shows a
secret (provider keys, API keys, the admin token)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gateway.settings import Settings
from gateway.store import api_keys
from gateway.store.setup import open_key_store
from tests.support.console import console_client, csrf_of, insert_logs, log_row
from tests.support.databases import ADMIN_TOKEN
from tests.support.keys import create_api_key, create_virtual_key
from tests.support.servers import ThreadedServer

PROVIDER_SECRET = "sk-provider-secret-do-not-show-0123456789"
PAGES = ("/console/", "/console/?range=7d&bucket=day&split=model",
         "/console/?split=virtual_key", "/console/logs", "/console/virtual-keys",
         "/console/api-keys", "/console/configs", "/console/configs/new", "/console/prompts")


@pytest.fixture
def gateway(keyed_gateway: Callable[..., ThreadedServer]) -> ThreadedServer:
    return keyed_gateway()


@pytest.mark.parametrize("path", [*PAGES, "/console/logs/some-id", "/console/configs/pc-x"])
def test_pages_send_a_visitor_without_a_session_to_the_login_form(
        gateway: ThreadedServer, path: str) -> None:
    response = httpx.get(gateway.url + path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


def test_wrong_credentials_do_not_log_in(gateway: ThreadedServer) -> None:
    inference_key = create_api_key(gateway, scopes=["inference"])
    with httpx.Client(base_url=gateway.url) as client:
        for credential in ("not-the-token", inference_key):
            form = client.get("/console/login")
            response = client.post("/console/login", data={"token": credential,
                                                            "csrf": csrf_of(form.text)})
            assert response.status_code == 401
            assert "gw_console=" not in response.headers.get("set-cookie", "")
        assert client.get("/console/").status_code == 303


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session(
        gateway: ThreadedServer) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        form = client.get("/console/login?next=/console/logs")
        response = client.post("/console/login", data={
            "token": ADMIN_TOKEN, "csrf": csrf_of(form.text), "next": "/console/logs"})
        assert response.status_code == 303 and response.headers["location"] == "/console/logs"
        cookie = next(c for c in response.headers.get_list("set-cookie")
                      if c.startswith("gw_console="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert ADMIN_TOKEN not in cookie
        page = client.get("/console/")
        assert page.status_code == 200 and "Overview" in page.text
        assert page.headers["cache-control"] == "no-store"
        out = client.post("/console/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        assert client.get("/console/").status_code == 303


def test_login_redirects_only_inside_the_console(gateway: ThreadedServer) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        form = client.get("/console/login")
        response = client.post("/console/login", data={
            "token": ADMIN_TOKEN, "csrf": csrf_of(form.text), "next": "//evil.example/x"})
        assert response.headers["location"] == "/console"


def test_login_without_its_csrf_token_is_refused(gateway: ThreadedServer) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        client.get("/console/login")
        response = client.post("/console/login", data={"token": ADMIN_TOKEN,
                                                       "csrf": "forged"})
        assert response.status_code == 403
        assert client.get("/console/").status_code == 303
    # A token lifted from another browser's form is useless without that browser's cookie.
    token = csrf_of(httpx.get(gateway.url + "/console/login").text)
    response = httpx.post(gateway.url + "/console/login",
                          data={"token": ADMIN_TOKEN, "csrf": token})
    assert response.status_code == 403


def test_forms_without_the_session_csrf_token_are_refused(gateway: ThreadedServer) -> None:
    with console_client(gateway) as client:
        for data in ({"name": "forged", "provider": "openai", "key": PROVIDER_SECRET},
                     {"name": "forged", "provider": "openai", "key": PROVIDER_SECRET,
                      "csrf": "not-the-token"}):
            response = client.post("/console/virtual-keys", data=data)
            assert response.status_code == 403
            assert "CSRF" in response.text
        response = client.post("/console/logout", data={})
        assert response.status_code == 403
        listing = client.get("/console/virtual-keys").text
        assert "forged" not in listing
        # And with the token, the same form works.
        created = client.post("/console/virtual-keys", data={
            "name": "real", "provider": "openai", "key": PROVIDER_SECRET,
            "csrf": csrf_of(listing)})
        assert created.status_code == 201


def test_an_api_key_session_ends_when_the_key_is_revoked(gateway: ThreadedServer) -> None:
    admin_key = create_api_key(gateway, name="ops", scopes=["admin"])
    with console_client(gateway, admin_key) as client:
        page = client.get("/console/api-keys")
        assert page.status_code == 200 and "API key &#39;ops&#39;" in page.text
        key_id = re.search(r'/console/api-keys/([^/]+)/revoke', page.text)
        assert key_id
        client.post(f"/console/api-keys/{key_id.group(1)}/revoke",
                    data={"csrf": csrf_of(page.text)})
        assert client.get("/console/").status_code == 303


def test_no_page_shows_a_secret(gateway: ThreadedServer, database_url: str) -> None:
    vk = create_virtual_key(gateway, name="prod", provider="openai", key=PROVIDER_SECRET,
                            usage_limits={"credit_limit": 5, "periodic_reset": "monthly"},
                            rate_limits=[{"type": "requests", "unit": "rpm", "value": 60}])
    inference_key = create_api_key(gateway, name="svc")
    row = log_row(virtual_key_id=vk["id"], metadata={"team": "search"},
                  request_body='{"api_key": "[redacted]"}')
    asyncio.run(insert_logs(database_url, [row]))
    with console_client(gateway) as client:
        new_key_page = client.post("/console/api-keys", data={
            "name": "fresh", "scopes": "inference", "csrf": csrf_of(client.get(
                "/console/api-keys").text)})
        assert new_key_page.status_code == 201
        fresh_key = re.search(r'<pre id="new-key">([^<]+)</pre>', new_key_page.text)
        assert fresh_key and fresh_key.group(1).startswith("pgw-")  # shown this once
        pages = [*PAGES, f"/console/logs/{row['id']}", "/console/logs?virtual_key=prod"]
        for path in pages:
            page = client.get(path)
            assert page.status_code == 200, (path, page.text)
            for secret in (PROVIDER_SECRET, inference_key, fresh_key.group(1), ADMIN_TOKEN):
                assert secret not in page.text, f"{path} shows a secret"
        listing = client.get("/console/virtual-keys").text
        assert "****6789" in listing
        assert "spend this month: $0.0000 of $5" in listing
        assert "requests / minute: 0 of 60" in listing


def test_logs_filter_paginate_and_show_attempts(gateway: ThreadedServer,
                                                database_url: str) -> None:
    now = datetime.now(UTC)
    rows = [log_row(created_at=now - timedelta(seconds=i), model=f"m-{i % 2}",
                    status_code=200 if i % 3 else 429, metadata={"run": str(i)})
            for i in range(60)]
    rows[0].update(attempts=[
        {"path": "0", "provider": "groq", "status": 503, "latency_ms": 5.0, "error": "down"},
        {"path": "1", "provider": "openai", "status": 200, "latency_ms": 90.0, "error": None}],
        cache_status="MISS", cost_usd=0.0042)
    asyncio.run(insert_logs(database_url, rows))
    with console_client(gateway) as client:
        first = client.get("/console/logs")
        ids = re.findall(r'<tr data-id="([^"]+)"', first.text)
        assert ids[:3] == [r["id"] for r in rows[:3]] and len(ids) == 50
        older = re.search(r'href="(\?before=[^"]+)" id="older"', first.text)
        assert older
        second = client.get("/console/logs" + older.group(1).replace("&amp;", "&"))
        assert re.findall(r'<tr data-id="([^"]+)"', second.text) == [r["id"] for r in rows[50:]]
        errors = client.get("/console/logs?status=429")
        assert len(re.findall(r"<tr data-id=", errors.text)) == 20
        by_model = client.get("/console/logs?model=m-1&status=ok")
        assert len(re.findall(r"<tr data-id=", by_model.text)) == 20
        by_meta = client.get("/console/logs?metadata=run%3D7")
        assert re.findall(r'<tr data-id="([^"]+)"', by_meta.text) == [rows[7]["id"]]
        by_trace = client.get(f"/console/logs?trace_id={rows[5]['trace_id']}")
        assert re.findall(r'<tr data-id="([^"]+)"', by_trace.text) == [rows[5]["id"]]
        assert client.get("/console/logs?status=teapot").status_code == 400
        assert client.get("/console/logs?metadata=novalue").status_code == 400
        assert client.get("/console/logs?before=garbage").status_code == 400
        detail = client.get(f"/console/logs/{rows[0]['id']}").text
        assert "groq" in detail and "down" in detail and "MISS" in detail
        assert "$0.004200" in detail
        assert client.get("/console/logs/nope").status_code == 404


def test_overview_sums_and_splits(gateway: ThreadedServer, database_url: str) -> None:
    now = datetime.now(UTC)
    rows = [log_row(created_at=now - timedelta(minutes=i), provider="groq" if i < 3 else
                    "openai", latency_ms=float(10 * (i + 1)), total_tokens=100,
                    status_code=500 if i == 0 else 200) for i in range(10)]
    rows.append(log_row(created_at=now - timedelta(days=3)))  # outside 24h
    asyncio.run(insert_logs(database_url, rows))
    with console_client(gateway) as client:
        page = client.get("/console/?range=24h&bucket=hour&split=provider").text
        assert re.search(r'id="total-requests">10<', page)
        assert "<svg" in page and "Requests per hour" in page
        table = page[page.index('id="groups"'):]
        assert re.search(r'>openai</a></td><td class="num">7</td><td class="num">0', table)
        assert re.search(r'>groq</a></td><td class="num">3</td><td class="num">1', table)
        assert 'href="/console/logs?provider=groq"' in table
        assert "55 ms / 96 ms" in page  # p50 and p95 of 10..100 ms, interpolated
        week = client.get("/console/?range=7d&bucket=day").text
        assert re.search(r'id="total-requests">11<', week)


HOOK_RESULTS = {
    "before_request_hooks": [{
        "id": "no-cards", "type": "guardrail", "verdict": False, "deny": True, "async": False,
        "transformed": False, "execution_time": 1.5, "created_at": "2026-12-08T12:00:00.000Z",
        "checks": [{"id": "default.regexMatch", "verdict": False, "error": None,
                    "execution_time": 0.42, "transformed": False, "fail_on_error": False,
                    "explanation": "The regex pattern matched the text when it should not "
                                   "have."},
                   {"id": "default.webhook", "verdict": False,
                    "error": {"name": "TimeoutError", "message": "Request timed out after 50ms"},
                    "execution_time": 50.0, "transformed": False, "fail_on_error": False,
                    "explanation": None}]}],
    "after_request_hooks": [{"id": "later", "type": "guardrail", "skipped": True}]}


def test_guardrail_results_on_the_log_detail_and_failures_on_the_overview(
        gateway: ThreadedServer, database_url: str) -> None:
    now = datetime.now(UTC)
    denied = log_row(created_at=now, status_code=446, hook_results=HOOK_RESULTS,
                     hooks_failed=True)
    passed = log_row(created_at=now - timedelta(seconds=1), hooks_failed=False,
                     hook_results={"before_request_hooks": [], "after_request_hooks": []})
    plain = log_row(created_at=now - timedelta(seconds=2))
    asyncio.run(insert_logs(database_url, [denied, passed, plain]))
    with console_client(gateway) as client:
        detail = client.get(f"/console/logs/{denied['id']}").text
        hooks = detail[detail.index('id="hook-results"'):]
        assert re.search(r"<code>no-cards</code> guardrail</td>\s*<td><span class=\"status-err\">"
                         r"denied</span>", hooks)
        assert "default.regexMatch" in hooks and "matched the text when it should not" in hooks
        assert "TimeoutError: Request timed out after 50ms" in hooks and "50.00 ms" in hooks
        assert re.search(r">error</span>", hooks) and re.search(r">fail</span>", hooks)
        assert "skipped" in hooks
        quiet = client.get(f"/console/logs/{plain['id']}").text
        assert "No guardrail ran on this request." in quiet
        overview = client.get("/console/?range=24h").text
        assert re.search(r'id="guardrail-failures">1<', overview)
        failures = client.get("/console/logs?hooks_failed=true").text
        assert re.findall(r'<tr data-id="([^"]+)"', failures) == [denied["id"]]
        assert "guardrails-failed" in failures
        others = client.get("/console/logs?hooks_failed=false").text
        assert re.findall(r'<tr data-id="([^"]+)"', others) == [passed["id"], plain["id"]]
        assert client.get("/console/logs?hooks_failed=maybe").status_code == 400


def test_configs_are_checked_before_saving_and_each_change_is_a_version(
        gateway: ThreadedServer) -> None:
    with console_client(gateway) as client:
        csrf = csrf_of(client.get("/console/configs/new").text)
        bad = client.post("/console/configs", data={
            "csrf": csrf, "name": "", "config": '{"targets": [{"weight": -1}], "oops": 1}'})
        assert bad.status_code == 400
        problems = bad.text[bad.text.index('id="problems"'):]
        assert "name: is required" in problems
        assert "targets[0].weight" in problems and "oops" in problems
        assert "not valid JSON" in client.post("/console/configs", data={
            "csrf": csrf, "name": "x", "config": "{nope"}).text
        assert "No saved configs yet" in client.get("/console/configs").text

        made = client.post("/console/configs", data={
            "csrf": csrf, "name": "main route", "config": '{"provider": "openai"}'})
        assert made.status_code == 303
        slug = made.headers["location"].rsplit("/", 1)[1]
        assert slug.startswith("pc-main-route-")
        rejected = client.post(f"/console/configs/{slug}/edit", data={
            "csrf": csrf, "name": "main route", "config": '{"strategy": {"mode": "nope"}}'})
        assert rejected.status_code == 400 and "strategy.mode" in rejected.text
        edited = client.post(f"/console/configs/{slug}/edit", data={
            "csrf": csrf, "name": "main route", "config": '{"provider": "groq"}'})
        assert edited.status_code == 303
        view = client.get(f"/console/configs/{slug}").text
        assert "Version 2 (current)" in view and "Version 1 ·" in view
        assert "&#34;groq&#34;" in view


async def _admin_key(database_url: str) -> str:
    """An admin-scope API key made straight in the key store (the admin API is closed)."""
    db, store, _ = await open_key_store(Settings(_env_file=None, database_url=database_url,
                                                 auto_migrate=True))
    try:
        return (await api_keys.create(store, {"name": "ops", "scopes": ["admin"]}))[1]
    finally:
        await db.close()


def test_without_an_admin_token_an_admin_scope_api_key_logs_in(
        keyed_gateway: Callable[..., ThreadedServer], database_url: str) -> None:
    gateway = keyed_gateway(admin_token=None)
    assert 'id="no-admin-token"' in httpx.get(gateway.url + "/console/login").text
    with httpx.Client(base_url=gateway.url) as client:
        form = client.get("/console/login")
        refused = client.post("/console/login", data={"token": ADMIN_TOKEN,
                                                      "csrf": csrf_of(form.text)})
        assert refused.status_code == 401
    with console_client(gateway, asyncio.run(_admin_key(database_url))) as client:
        assert "API key &#39;ops&#39;" in client.get("/console/").text
