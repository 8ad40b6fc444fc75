"""webhook and log checks against a real loopback server, through the gateway's own client
and SSRF guard: pass, fail, timeout, unreachable, refused, non-2xx, oversized, transforms."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.guardrails import HookEvent
from gateway.guardrails.hooks import Hook
from gateway.guardrails.outbound import MAX_ANSWER_BYTES
from gateway.guardrails.runner import GuardrailRunner
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import create_client
from gateway.settings import Settings
from tests.gateway.guardrails.build import answer_event, chat_request, hook
from tests.support.servers import ThreadedServer, free_port

NEW_REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "rewritten"}]}
NEW_ANSWER = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "clean"}}]}


class Hooks:
    """The webhook and log server: records what it receives, answers by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.release = threading.Event()  # lets /slow answer (at teardown)
        self.arrived = 0

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.received.append((path, dict(request.headers), orjson.loads(await request.body())))
        if path == "/slow":
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        if path == "/pair":  # answers only once two calls are in flight at the same time
            self.arrived += 1
            while self.arrived < 2 and not self.release.is_set():
                await asyncio.sleep(0.01)
        echoed = {"auth": request.headers.get("authorization"), "url": str(request.url),
                  "odd": request.headers.get("x-odd")}
        if path.startswith("/echo"):  # a token may follow in the path
            path = "/echo-error" if path.startswith("/echo-error") else "/echo"
        answers: dict[str, Response] = {
            "/echo": JSONResponse({"verdict": False, "data": echoed}),
            "/echo-error": JSONResponse({"error": echoed}, status_code=401),
            "/true": JSONResponse({"verdict": True, "data": {"seen": True}}),
            "/false": JSONResponse({"verdict": False, "data": {"reason": "no"}}),
            "/error": JSONResponse({"error": "broken"}, status_code=500),
            "/transform": JSONResponse({"verdict": True, "transformedData": {
                "request": {"json": NEW_REQUEST}, "response": {"json": NEW_ANSWER}}}),
            "/big": PlainTextResponse("x" * (MAX_ANSWER_BYTES + 1)),
            "/log": PlainTextResponse("ok"),
            "/redirect": Response(status_code=302, headers={"location": "http://127.0.0.2/"}),
        }
        return answers.get(path, JSONResponse({"verdict": True}))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()
    with ThreadedServer(hooks.app()) as running:
        yield hooks, running.url
        hooks.release.set()


@pytest.fixture
def target(server: tuple[Hooks, str]) -> tuple[Hooks, str]:
    hooks, url = server
    hooks.received.clear()
    hooks.arrived = 0
    return hooks, url


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[GuardrailRunner]:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/g.db")
    http = create_client(settings)
    # 127.0.0.1 stands in for a public webhook host; 127.0.0.2 is the untrusted one.
    made = GuardrailRunner(http, HostGuard(["127.0.0.1"]))
    yield made
    await made.aclose()
    await http.aclose()


def webhook(url: str, **params: Any) -> Hook:
    return hook(("default.webhook", {"webhookURL": url, **params}), deny=True)


def chat(text: str = "hello") -> HookEvent:
    return HookEvent("chatComplete", chat_request(text), provider="openai",
                     metadata={"team": "a"})


async def test_a_passing_webhook_sees_the_context_but_no_headers(
        runner: GuardrailRunner, target: tuple[Hooks, str]) -> None:
    hooks, url = target
    result = await runner.before_request(
        [webhook(f"{url}/true?token=s3cret", headers='{"Authorization": "Bearer hook-key"}')],
        chat())
    assert not result.failed and not result.deny
    check = result.hooks[0].checks[0]
    assert check.verdict is True and check.error is None
    assert check.data == {"verdict": True, "explanation": "Webhook request succeeded",
                          "responseData": {"seen": True}, "webhookUrl": f"{url}/…",
                          "requestContext": {"timeout": 3000}}
    assert b"s3cret" not in orjson.dumps(result.to_json())
    path, headers, payload = hooks.received[0]
    assert path == "/true" and headers["authorization"] == "Bearer hook-key"
    assert headers["content-type"] == "application/json"
    assert payload["eventType"] == "beforeRequestHook"
    assert payload["request"]["json"] == chat_request("hello")
    assert payload["request"]["text"] == "hello" and "headers" not in payload["request"]
    assert payload["metadata"] == {"team": "a"} and payload["requestType"] == "chatComplete"


async def test_a_failing_webhook_denies(runner: GuardrailRunner,
                                        target: tuple[Hooks, str]) -> None:
    _, url = target
    result = await runner.before_request([webhook(f"{url}/false")], chat())
    assert result.deny
    assert result.hooks[0].checks[0].data["explanation"] == "Webhook request failed"


async def test_a_slow_webhook_times_out_as_an_error(runner: GuardrailRunner,
                                                    target: tuple[Hooks, str]) -> None:
    _, url = target
    lenient = await runner.before_request([webhook(f"{url}/slow", timeout=200)], chat())
    check = lenient.hooks[0].checks[0]
    assert check.error is not None
    assert (check.error.name, check.error.message) == ("TimeoutError",
                                                       "Request timed out after 200ms")
    assert not lenient.deny and not lenient.failed  # fail-open
    strict = await runner.before_request(
        [webhook(f"{url}/slow", timeout=200, failOnError=True)], chat())
    assert strict.deny


async def test_an_unreachable_webhook_is_an_error(runner: GuardrailRunner) -> None:
    port = free_port()  # nothing listens there
    result = await runner.before_request([webhook(f"http://127.0.0.1:{port}/true")], chat())
    check = result.hooks[0].checks[0]
    assert check.error is not None and "unreachable" in check.error.message
    assert not result.deny
    strict = await runner.before_request(
        [webhook(f"http://127.0.0.1:{port}/true", failOnError=True)], chat())
    assert strict.deny


async def test_an_untrusted_loopback_host_is_refused_before_any_connect(
        runner: GuardrailRunner) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        for check_id, key in (("default.webhook", "webhookURL"), ("default.log", "logURL")):
            refused = hook((check_id, {key: f"http://127.0.0.2:{port}/true",
                                       "failOnError": True}), deny=True)
            result = await runner.before_request([refused], chat())
            error = result.hooks[0].checks[0].error
            assert error is not None and result.deny
            assert error.message == ("URL refused by the SSRF guard: 127.0.0.2 is a loopback "
                                     "address")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected


async def test_a_webhook_error_status_surfaces_its_body(runner: GuardrailRunner,
                                                        target: tuple[Hooks, str]) -> None:
    _, url = target
    result = await runner.before_request([webhook(f"{url}/error")], chat())
    check = result.hooks[0].checks[0]
    assert check.error is not None
    assert (check.error.name, check.error.message) == ("HttpError", "HTTP error! status: 500")
    assert check.data["responseData"] == {"error": "broken"}
    redirected = await runner.before_request([webhook(f"{url}/redirect")], chat())
    assert redirected.hooks[0].checks[0].error is not None  # redirects are not followed


async def test_the_webhooks_own_secrets_are_redacted_from_what_it_answers(
        runner: GuardrailRunner, target: tuple[Hooks, str]) -> None:
    # A config's webhook may be an operator's (key defaults): an answer that echoes its
    # credentials must not show them to the client in hook_results.
    _, url = target
    token, query = "webhook-token-0123456789", "sig=query-secret-0123456789"
    headers = {"Authorization": f"Bearer {token}", "X-Odd": 'pa"ss\\word-0123456'}
    for path in ("/echo", "/echo-error"):
        result = await runner.before_request(
            [webhook(f"{url}{path}/path-token-0123456789?{query}", headers=headers)], chat())
        data = result.hooks[0].checks[0].data
        shown = orjson.dumps(data).decode()
        assert "[REDACTED]" in shown and data["webhookUrl"] == f"{url}/…"
        for secret in (token, "query-secret", "path-token", "word-0123456"):
            assert secret not in shown, shown
        assert isinstance(data["responseData"], dict)  # redacted, its shape kept


async def test_an_oversized_answer_is_cut_off(runner: GuardrailRunner,
                                              target: tuple[Hooks, str]) -> None:
    _, url = target
    result = await runner.before_request([webhook(f"{url}/big")], chat())
    error = result.hooks[0].checks[0].error
    assert error is not None and "more than 1048576 bytes" in error.message


async def test_a_webhook_rewrites_the_request_and_the_answer(
        runner: GuardrailRunner, target: tuple[Hooks, str]) -> None:
    _, url = target
    before = await runner.before_request([webhook(f"{url}/transform")], chat())
    assert before.body == NEW_REQUEST and before.hooks[0].transformed
    after = await runner.after_request([webhook(f"{url}/transform")], answer_event("dirty"))
    assert after.body == NEW_ANSWER


async def test_sequential_checks_read_a_webhooks_rewrite(runner: GuardrailRunner,
                                                         target: tuple[Hooks, str]) -> None:
    _, url = target
    rewrite = ("default.webhook", {"webhookURL": f"{url}/transform"})
    must_say = ("default.contains", {"words": ["rewritten"], "operator": "all"})
    in_order = hook(rewrite, must_say, sequential=True, deny=True)
    assert not (await runner.before_request([in_order], chat("original"))).deny
    at_once = hook(rewrite, must_say, deny=True)
    assert (await runner.before_request([at_once], chat("original"))).deny


async def test_webhook_hooks_run_at_the_same_time(runner: GuardrailRunner,
                                                  target: tuple[Hooks, str]) -> None:
    _, url = target
    pair = [webhook(f"{url}/pair", timeout=10_000, failOnError=True) for _ in range(2)]
    result = await runner.before_request(pair, chat())
    assert not result.deny and all(h.verdict for h in result.hooks)


async def test_log_posts_the_context(runner: GuardrailRunner,
                                     target: tuple[Hooks, str]) -> None:
    hooks, url = target
    logged = hook(("default.log", {"logURL": f"{url}/log",
                                   "headers": '{"x-log-key": "k"}'}))
    result = await runner.after_request([logged], answer_event("the answer"))
    check = result.hooks[0].checks[0]
    assert check.verdict is True and check.error is None
    assert check.data == {"message": f"Logged the request to {url}/…"}
    _, headers, payload = hooks.received[0]
    assert headers["x-log-key"] == "k"
    assert payload["response"]["text"] == "the answer"
    assert payload["eventType"] == "afterRequestHook"
    assert payload["response"]["statusCode"] == 200
