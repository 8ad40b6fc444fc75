"""Guardrails seen from outside: a real gateway process, the OpenAI SDK and plain HTTP, a
loopback upstream that records what reached it, and a loopback webhook/log server.

Covers Portkey's contract end to end: 446 before the upstream call, 246 on the answer,
fallback past a 446, every built-in check passing and failing, PII redaction reaching the
upstream redacted, webhooks that pass, fail, time out or are unreachable, a hostile regex that
leaves the gateway answering, and streams (446 before the first byte, `hook_results` events).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.guardrails.registry import CHECKS
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.hook_server import HookServer
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.servers import ResetServer, ThreadedServer, free_port
from tests.support.waiting import wait_until

PROVIDER_KEY = "sk-guardrail-tests-provider-key-0123"
ANSWER = "".join(STREAM_WORDS)  # what the mock upstream always answers
HOOKS_URL = "http://127.0.0.1:{hooks}"  # the hook server, filled in per test


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[tuple[MockUpstream, ThreadedServer]]:
    mock = MockUpstream()
    with ThreadedServer(mock.app()) as server:
        yield mock, server


@pytest.fixture(scope="module")
def hook_server() -> Iterator[tuple[HookServer, ThreadedServer]]:
    hooks = HookServer()
    with ThreadedServer(hooks.app()) as server:
        yield hooks, server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            upstream_server: tuple[MockUpstream, ThreadedServer]) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("guardrails")
    process = GatewayProcess(gateway_env(tmp, upstream_server[1].url), cwd=tmp).start()
    yield process
    process.stop()


@pytest.fixture
def upstream(upstream_server: tuple[MockUpstream, ThreadedServer]) -> MockUpstream:
    upstream_server[0].reset()
    return upstream_server[0]


@pytest.fixture
def hooks(hook_server: tuple[HookServer, ThreadedServer]) -> HookServer:
    hook_server[0].reset()
    return hook_server[0]


@pytest.fixture
def hooks_url(hook_server: tuple[HookServer, ThreadedServer]) -> str:
    return hook_server[1].url


def config(**keys: Any) -> dict[str, Any]:
    return {"provider": "openai", "api_key": PROVIDER_KEY, **keys}


def deny_if(check: str, **params: Any) -> list[dict[str, Any]]:
    """One shorthand guardrail hook that denies when `check` fails."""
    return [{check: params, "deny": True}]


def chat_body(text: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def post(gateway: GatewayProcess, cfg: dict[str, Any], body: dict[str, Any],
         path: str = "/v1/chat/completions", **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body, timeout=60,
                      headers={"x-portkey-config": json.dumps(cfg), **headers})


def sdk(gateway: GatewayProcess, cfg: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused-the-config-holds-it", base_url=f"{gateway.url}/v1",
                         default_headers={"x-portkey-config": json.dumps(cfg)}, max_retries=0)


def first_check(results: dict[str, Any], phase: str = "before_request_hooks") -> dict[str, Any]:
    check: dict[str, Any] = results[phase][0]["checks"][0]
    return check


# --- deny, flag, fallback -------------------------------------------------------------------


def test_input_deny_is_446_with_hook_results_and_no_upstream_call(gateway, upstream):
    cfg = config(input_guardrails=deny_if("default.contains", words=["DROP TABLE"],
                                          operator="none"))
    response = post(gateway, cfg, chat_body("please DROP TABLE users"))
    assert response.status_code == 446
    body = response.json()
    assert body["error"]["type"] == "hooks_failed"
    assert "hook_results" in body["error"]["message"]
    hook = body["hook_results"]["before_request_hooks"][0]
    assert (hook["verdict"], hook["deny"], hook["type"]) == (False, True, "guardrail")
    assert hook["checks"][0]["data"]["foundWords"] == ["DROP TABLE"]
    assert body["hook_results"]["after_request_hooks"] == []
    assert upstream.requests == []

    with pytest.raises(openai.APIStatusError) as denied:
        sdk(gateway, cfg).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "DROP TABLE x"}])
    assert denied.value.status_code == 446
    assert denied.value.response.json()["hook_results"]["before_request_hooks"][0]["deny"]
    assert upstream.requests == []


def test_input_pass_reaches_the_upstream_and_reports_hook_results(gateway, upstream):
    cfg = config(input_guardrails=deny_if("default.contains", words=["DROP TABLE"],
                                          operator="none"))
    completion = sdk(gateway, cfg).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "select 1"}])
    assert completion.choices[0].message.content == ANSWER
    assert completion.model_extra["hook_results"]["before_request_hooks"][0]["verdict"] is True
    assert len(upstream.requests) == 1


def test_completions_prompt_is_checked_too(gateway, upstream):
    cfg = config(input_guardrails=deny_if("default.contains", words=["rm -rf"], operator="none"))
    response = post(gateway, cfg, {"model": "gpt-3.5-turbo-instruct", "prompt": "run rm -rf /"},
                    path="/v1/completions")
    assert response.status_code == 446
    assert upstream.requests == []


def test_output_failure_is_246_and_the_sdk_takes_it_as_success(gateway, upstream):
    cfg = config(output_guardrails=[{"default.contains": {"words": ["mock"], "operator": "none"}}])
    raw = sdk(gateway, cfg).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert raw.status_code == 246
    completion = raw.parse()
    assert completion.choices[0].message.content == ANSWER
    after = completion.model_extra["hook_results"]["after_request_hooks"][0]
    assert (after["verdict"], after["deny"]) == (False, False)
    assert after["checks"][0]["data"]["foundWords"] == ["mock"]

    plain = sdk(gateway, cfg).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.content == ANSWER
    assert len(upstream.requests) == 2


def test_an_output_mutator_changes_the_answer_the_client_gets(gateway, upstream):
    # The answer is encoded again from what the mutator made (no splice into the bytes).
    cfg = config(output_mutators=[{"regexReplace": {"rule": "mock", "redactText": "[X]"}}],
                 input_guardrails=deny_if("default.wordCount", minWords=1))
    response = post(gateway, cfg, chat_body("hi"))
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"] == ANSWER.replace("mock", "[X]")
    assert body["object"] == "chat.completion" and list(body)[-1] == "hook_results"
    results = body["hook_results"]
    assert results["before_request_hooks"][0]["verdict"] is True
    assert results["after_request_hooks"][0]["transformed"] is True


def test_output_deny_drops_the_answer_with_446(gateway, upstream):
    cfg = config(output_guardrails=deny_if("default.contains", words=["mock"], operator="none"))
    response = post(gateway, cfg, chat_body("hi"))
    assert response.status_code == 446
    assert "choices" not in response.json()
    assert response.json()["hook_results"]["after_request_hooks"][0]["deny"] is True
    assert len(upstream.requests) == 1  # asked, and its answer withheld


def _fallback(on_status_codes: list[int] | None) -> dict[str, Any]:
    strategy: dict[str, Any] = {"mode": "fallback"}
    if on_status_codes is not None:
        strategy["on_status_codes"] = on_status_codes
    return {"strategy": strategy, "targets": [
        {"provider": "openai", "api_key": PROVIDER_KEY, "override_params": {"model": "first"},
         "input_guardrails": deny_if("default.wordCount", maxWords=3)},
        {"provider": "groq", "api_key": PROVIDER_KEY, "override_params": {"model": "second"}},
    ]}


@pytest.mark.parametrize("on_status_codes", [None, [446, 500]])
def test_fallback_moves_past_a_446(gateway, upstream, on_status_codes):
    response = post(gateway, _fallback(on_status_codes), chat_body("four words are here"))
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == ANSWER
    assert [r.body["model"] for r in upstream.requests] == ["second"]


def test_fallback_stops_at_a_446_its_status_codes_do_not_list(gateway, upstream):
    response = post(gateway, _fallback([429, 500]), chat_body("four words are here"))
    assert response.status_code == 446
    assert upstream.requests == []


# --- every built-in check, passing and failing -----------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request of a check's case: the user text, or another model, path or metadata."""

    text: str = "hello there"
    model: str = "gpt-4o-mini"
    path: str = "/v1/chat/completions"
    metadata: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        if self.path == "/v1/embeddings":
            return {"model": self.model, "input": self.text}
        return {"model": self.model, "messages": [{"role": "user", "content": self.text}]}

    def headers(self) -> dict[str, str]:
        return {"x-portkey-metadata": json.dumps(self.metadata)} if self.metadata else {}


@dataclass(frozen=True)
class Case:
    params: dict[str, Any]
    passing: Call
    failing: Call | None  # None: the check cannot fail (addPrefix always passes)
    fail_params: dict[str, Any] | None = None  # when failing needs other parameters
    extra: dict[str, Any] = field(default_factory=dict)


SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
# Input guardrails read the last user message, so text checks meant for answers (jsonSchema,
# containsCode, ...) are exercised on it: Portkey's manifest phases are advisory.
CASES: dict[str, Case] = {
    "regexMatch": Case({"rule": r"order #\d{4}"}, Call("where is order #1234?"),
                       Call("where is my order?")),
    "contains": Case({"words": ["refund"], "operator": "any"}, Call("I want a refund"),
                     Call("I want a discount")),
    "wordCount": Case({"minWords": 2, "maxWords": 5}, Call("three words here"),
                      Call("this sentence has far too many words in it")),
    "sentenceCount": Case({"minSentences": 1, "maxSentences": 2}, Call("One. Two."),
                          Call("no sentence ends here")),
    "characterCount": Case({"maxCharacters": 10}, Call("short"), Call("longer than ten")),
    "alluppercase": Case({}, Call("HELLO THERE"), Call("Hello there")),
    "alllowercase": Case({}, Call("hello there"), Call("Hello there")),
    "endsWith": Case({"suffix": "please"}, Call("help me please."), Call("help me now")),
    "notNull": Case({}, Call("anything"), Call("   ")),
    "jsonSchema": Case({"schema": SCHEMA}, Call('data: {"name": "Ada"}'),
                       Call('data: {"age": 3}')),
    "jsonKeys": Case({"keys": ["name"], "operator": "all"}, Call('{"name": "Ada"}'),
                     Call('{"age": 3}')),
    "containsCode": Case({"format": "Python"}, Call("```py\nprint(1)\n```"),
                         Call("```js\nconsole.log(1)\n```")),
    "validUrls": Case({}, Call("see https://example.com/docs"), Call("see https://exa mple")),
    "modelWhitelist": Case({"models": ["gpt-4o-mini"]}, Call(), Call(model="gpt-4o")),
    "modelRules": Case({"rules": {"defaults": ["gpt-4o-mini"],
                                  "metadata": {"team": {"research": ["gpt-4o"]}}}},
                       Call(model="gpt-4o", metadata={"team": "research"}),
                       Call(model="gpt-4o", metadata={"team": "sales"})),
    "allowedRequestTypes": Case({"allowedTypes": ["chatComplete"]}, Call(),
                                Call(path="/v1/embeddings", model="text-embedding-3-small")),
    "requiredMetadataKeys": Case({"metadataKeys": ["team"], "operator": "all"},
                                 Call(metadata={"team": "a"}), Call(metadata={"other": "b"})),
    "webhook": Case({"webhookURL": HOOKS_URL + "/verdict/true"}, Call(), Call(),
                    fail_params={"webhookURL": HOOKS_URL + "/verdict/false"}),
    "log": Case({"logURL": HOOKS_URL + "/log"}, Call(), Call(),
                fail_params={"logURL": HOOKS_URL + "/status/500", "failOnError": True}),
    "regexReplace": Case({"rule": "hunter2", "failOnDetection": True},
                         Call("my password is secret"), Call("my password is hunter2")),
    "addPrefix": Case({"prefix": "Be brief. "}, Call(), None),
}


def _filled(params: dict[str, Any], hooks_url: str) -> dict[str, Any]:
    text = json.dumps(params).replace(HOOKS_URL, hooks_url)
    filled: dict[str, Any] = json.loads(text)
    return filled


def test_every_registered_check_has_a_case():
    assert {f"default.{name}" for name in CASES} == set(CHECKS)
    assert [name for name, case in CASES.items() if case.failing is None] == ["addPrefix"]


@pytest.mark.parametrize("name,passes", [(name, passes) for name, case in CASES.items()
                                         for passes in (True, False)
                                         if passes or case.failing is not None])
def test_builtin_check_through_http(gateway, upstream, hooks, hooks_url, name, passes):
    case = CASES[name]
    call = case.passing if passes else case.failing
    assert call is not None
    params = case.params if passes or case.fail_params is None else case.fail_params
    cfg = config(input_guardrails=deny_if(f"default.{name}", **_filled(params, hooks_url)))
    response = post(gateway, cfg, call.body(), call.path, **call.headers())
    check = first_check(response.json()["hook_results"])
    assert check["id"] == f"default.{name}"
    if passes:
        assert response.status_code == 200, response.text
        assert check["verdict"] is True, check
        assert len(upstream.requests) == 1
    else:
        assert response.status_code == 446, response.text
        assert check["verdict"] is False, check
        assert upstream.requests == []


def test_add_prefix_and_log_reach_their_destinations(gateway, upstream, hooks, hooks_url):
    cfg = config(input_mutators=[{"addPrefix": {"prefix": "Be brief. "}}],
                 input_guardrails=[{"log": {"logURL": f"{hooks_url}/log"}}])
    response = post(gateway, cfg, chat_body("what is RE2?"),
                    authorization=f"Bearer {PROVIDER_KEY}")
    assert response.status_code == 200
    assert upstream.requests[0].body["messages"][-1]["content"] == "Be brief. what is RE2?"
    logged = hooks.payload(hooks.calls[0])
    assert logged["eventType"] == "beforeRequestHook"
    assert logged["request"]["json"]["messages"][-1]["content"] == "Be brief. what is RE2?"
    assert PROVIDER_KEY not in hooks.calls[0].body.decode()  # no request headers, no keys


# --- mutators: PII redaction reaching the upstream -----------------------------------------

PII = {
    "email": "ada@example.com",
    "phone": "+1 415 555 0134",
    "credit card": "4111 1111 1111 1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "api key": "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
}


@pytest.mark.parametrize("streamed", [False, True])
def test_pii_redaction_reaches_the_upstream_redacted(gateway, upstream, streamed):
    cfg = config(input_mutators=[{"regexReplace": {"preset": "pii", "redactText": "[PII]"}}])
    text = "Contact me: " + "; ".join(f"{kind} {value}" for kind, value in PII.items())
    response = post(gateway, cfg, chat_body(text, stream=streamed))
    assert response.status_code == 200
    sent = upstream.requests[0].body["messages"][-1]["content"]
    for kind, value in PII.items():
        assert value not in sent, kind
    assert sent.count("[PII]") == len(PII), sent
    assert sent.startswith("Contact me: email [PII]; phone [PII]")


# --- webhooks ----------------------------------------------------------------------------------


def _webhook(url: str, **params: Any) -> dict[str, Any]:
    return config(input_guardrails=deny_if("default.webhook", webhookURL=url, **params))


def test_a_webhook_urls_tokens_reach_neither_the_client_nor_the_log(
        tmp_path, upstream_server, upstream, hooks, hooks_url):
    env = gateway_env(tmp_path, upstream_server[1].url, GATEWAY_LOG_LEVEL="info")
    talkative = GatewayProcess(env, cwd=tmp_path).start()  # the default level, INFO
    try:
        url = f"{hooks_url}/verdict/false/path-token-0123456789?token=query-token-0123456789"
        denied = post(talkative, _webhook(url), chat_body("ok"))
        assert denied.status_code == 446 and len(hooks.calls) == 1
    finally:
        talkative.stop()
    assert "INFO" in talkative.output()  # it did log, at that level
    for secret in ("path-token", "query-token"):
        assert secret not in denied.text
        assert secret not in talkative.output()


def test_webhook_pass_and_fail_see_the_request(gateway, upstream, hooks, hooks_url):
    assert post(gateway, _webhook(f"{hooks_url}/verdict/true"), chat_body("ok")).status_code == 200
    denied = post(gateway, _webhook(f"{hooks_url}/verdict/false"), chat_body("ok"))
    assert denied.status_code == 446
    check = first_check(denied.json()["hook_results"])
    assert check["data"]["responseData"] == {"seen": True}
    assert check["data"]["webhookUrl"] == f"{hooks_url}/…"  # a path may hold a token
    assert len(upstream.requests) == 1
    sent = [hooks.payload(call) for call in hooks.calls]
    assert [p["request"]["json"]["messages"][-1]["content"] for p in sent] == ["ok", "ok"]
    assert {p["eventType"] for p in sent} == {"beforeRequestHook"}


@pytest.mark.parametrize("fail_on_error", [False, True])
def test_webhook_timeout_is_a_check_error_never_a_hang(gateway, upstream, hooks, hooks_url,
                                                      fail_on_error):
    cfg = _webhook(f"{hooks_url}/hold", timeout=200, failOnError=fail_on_error)
    response = post(gateway, cfg, chat_body("ok"))
    check = first_check(response.json()["hook_results"])
    assert check["error"]["name"] == "TimeoutError"
    assert check["fail_on_error"] is fail_on_error
    # fail-open by default (Portkey's rule); failOnError makes the error a denying failure
    assert response.status_code == (446 if fail_on_error else 200)
    assert len(upstream.requests) == (0 if fail_on_error else 1)
    assert wait_until(lambda: hooks.abandoned == 1)  # the gateway hung up on the webhook


@pytest.mark.parametrize("fail_on_error", [False, True])
def test_unreachable_webhook_is_a_check_error(gateway, upstream, fail_on_error):
    nothing = f"http://127.0.0.1:{free_port()}/webhook"  # no one listens there
    response = post(gateway, _webhook(nothing, failOnError=fail_on_error), chat_body("ok"))
    check = first_check(response.json()["hook_results"])
    assert check["verdict"] is False and check["error"] is not None
    assert response.status_code == (446 if fail_on_error else 200)


def test_webhook_to_an_untrusted_host_is_refused_before_connecting(gateway, upstream):
    with ResetServer(host="127.0.0.3") as untrusted:
        response = post(gateway, _webhook(f"{untrusted.url}/hook", failOnError=True),
                        chat_body("ok"))
    assert response.status_code == 446
    assert "SSRF guard" in first_check(response.json()["hook_results"])["error"]["message"]
    assert untrusted.accepted == 0


# --- a hostile regex leaves the gateway answering ---------------------------------------------

# Catastrophic for backtracking engines (nested quantifiers; exponential DFAs for lazy
# determinisation), linear under RE2. On ~2 MB each costs from milliseconds to about a second.
HOSTILE = ["(a+)+$", "(a|aa)+$", "(a*)*c", "[ab]*a[ab]{18}c", "[ab]*a[ab]{19}c",
           "[ab]*a[ab]{20}c", "[ab]*a[ab]{21}c"]


def test_hostile_regex_leaves_healthz_answering(gateway, upstream, hooks, hooks_url):
    """While the hostile checks run, /healthz keeps answering: no timing, only order.

    One sequential hook calls a webhook tagged `start`, then runs the hostile checks one after
    another; the upstream receives the request only once they are done. /healthz answers three
    times after `start` and before the upstream saw anything: had the checks held the event
    loop, no /healthz could be answered until they were done.
    """
    rng = random.Random(7)
    # A "c" first, so that the patterns needing one are searched (the required-literal
    # prefilter lets them through) without one ending there; only "(a*)*c" matches it.
    text = "c" + "".join(rng.choice("ab") for _ in range(2_000_000)) + "!"
    checks = [{"id": "default.webhook",
               "parameters": {"webhookURL": f"{hooks_url}/verdict/true?tag=start"}}]
    checks += [{"id": "default.regexMatch", "parameters": {"rule": rule, "not": True}}
               for rule in HOSTILE]
    # No deny: the one check that fails flags the answer (246), and the upstream is still
    # called once the checks are done, which is what the loop below watches for.
    cfg = config(before_request_hooks=[{"type": "guardrail", "sequential": True,
                                        "checks": checks}])
    outcome: dict[str, httpx.Response] = {}
    sender = threading.Thread(target=lambda: outcome.update(
        response=post(gateway, cfg, chat_body(text))))
    sender.start()
    try:
        assert wait_until(lambda: hooks.tagged("start"), timeout=60)
        answered = 0
        while answered < 3 and not upstream.requests:
            assert httpx.get(f"{gateway.url}/healthz", timeout=30).status_code == 200
            answered += 0 if upstream.requests else 1
        assert answered == 3, "/healthz waited for the hostile checks"
    finally:
        sender.join(120)
    response = outcome["response"]
    assert response.status_code == 246, response.text[:2000]
    verdicts = [c["verdict"] for c in response.json()["hook_results"][
        "before_request_hooks"][0]["checks"]]
    assert verdicts == [True] + [rule != "(a*)*c" for rule in HOSTILE]


# --- streams -------------------------------------------------------------------------------------


def _events(response: httpx.Response) -> list[Any]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[len("data: "):]))
    return events


def test_stream_input_deny_is_446_json_before_any_byte(gateway, upstream):
    cfg = config(input_guardrails=deny_if("default.contains", words=["secret"], operator="none"))
    response = post(gateway, cfg, chat_body("tell me the secret", stream=True))
    assert response.status_code == 446
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["hook_results"]["before_request_hooks"][0]["deny"] is True
    assert upstream.requests == []
    with pytest.raises(openai.APIStatusError) as denied:
        sdk(gateway, cfg).chat.completions.create(
            model="gpt-4o-mini", stream=True,
            messages=[{"role": "user", "content": "the secret"}])
    assert denied.value.status_code == 446


def test_stream_starts_with_input_hook_results_and_ends_with_output_ones(gateway, upstream):
    cfg = config(input_guardrails=deny_if("default.contains", words=["secret"], operator="none"),
                 output_guardrails=[{"default.contains": {"words": ["mock"], "operator": "none"}}])
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", timeout=60,
                      json=chat_body("hello", stream=True),
                      headers={"x-portkey-config": json.dumps(cfg)}) as response:
        assert response.status_code == 200  # a stream's status is out before its answer
        events = _events(response)
    first, *chunks, last = events
    assert list(first) == ["hook_results"]
    assert first["hook_results"]["before_request_hooks"][0]["verdict"] is True
    assert first["hook_results"]["after_request_hooks"] == []
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == ANSWER
    assert list(last) == ["hook_results"]
    after = last["hook_results"]["after_request_hooks"][0]
    assert after["verdict"] is False  # flagged on the assembled answer, never denied
    assert after["checks"][0]["data"]["foundWords"] == ["mock"]


def test_the_openai_sdk_iterates_streams_with_hook_results_events(gateway, upstream):
    cfg = config(input_guardrails=deny_if("default.contains", words=["secret"], operator="none"),
                 output_guardrails=[{"default.wordCount": {"maxWords": 2}}])
    client = sdk(gateway, cfg)
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hello"}]))
    hook_events = [c.model_extra["hook_results"] for c in chunks
                   if c.model_extra and "hook_results" in c.model_extra]
    assert [bool(e["after_request_hooks"]) for e in hook_events] == [False, True]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    # The SDK's stream helper accumulates the answer across the extra events too.
    with client.chat.completions.stream(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == ANSWER
