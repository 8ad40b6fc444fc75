"""`/v1/messages` through the real anthropic SDK, against a real gateway and loopback upstreams:
an OpenAI-compatible mock (the request is translated to Chat Completions and back) and a
fixture upstream that answers with recorded Anthropic bytes (the request goes natively, as
the client sent it). Usage rows are read back through the admin API."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anthropic
import httpx
import pytest

from gateway.app import create_app
from gateway.pipeline.dialects.messages_native import count_prompt
from tests.conftest import COMPAT_PROVIDERS, gateway_settings
from tests.gateway.conftest import OPTIONS
from tests.support.databases import ADMIN_TOKEN
from tests.support.eventstream_encode import frame
from tests.support.fixture_upstream import FixtureUpstream, Reply
from tests.support.limited_keys import key_store_settings
from tests.support.mock_upstream import STREAM_WORDS, TOOL_CALL, MockUpstream, prompt_tokens
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

FIXTURES = Path(__file__).parents[2] / "fixtures"
ANSWER = "".join(STREAM_WORDS)
WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                            "unit": {"type": "string"}},
                            "required": ["city"]}}
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FixtureUpstream, str]]:
    upstream = FixtureUpstream()
    with ThreadedServer(upstream.app()) as server:
        yield upstream, server.url


@pytest.fixture(scope="module")
def gateway(fake: tuple[FixtureUpstream, str], mock_server: Any,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    mock_url = mock_server[1].url
    urls = {slug: f"{mock_url}/v1" for slug in COMPAT_PROVIDERS}
    urls |= {slug: f"{fake[1]}/{slug}" for slug in ("anthropic", "vertex-ai", "bedrock")}
    settings = gateway_settings(tmp_path_factory.mktemp("messages"), mock_url,
                                provider_base_urls=urls, usage_flush_interval_s=0.05,
                                **key_store_settings())
    with ThreadedServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def upstream(fake: tuple[FixtureUpstream, str]) -> FixtureUpstream:
    fake[0].reset()
    return fake[0]


def sdk(gateway: str, provider: str, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-client-key", base_url=gateway, max_retries=0,
                               default_headers={"x-portkey-provider": provider, **headers})


def usage_row(gateway: str, request_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with httpx.Client(base_url=gateway, timeout=30,
                      headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        def written() -> bool:
            response = admin.get(f"/admin/logs/{request_id}")
            if response.status_code == 200:
                found.update(response.json())
            return response.status_code == 200
        assert wait_until(written, timeout=15), "no usage row was written"
    return found


def recorded(case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "anthropic" / case / "response.json").read_bytes())


# -- to an OpenAI-compatible target: translated -----------------------------------------------

def test_create_is_translated_and_billed(gateway: str, mock: MockUpstream) -> None:
    raw = sdk(gateway, "openai").messages.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=300, system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}], metadata={"user_id": "u-1"},
        extra_headers={"anthropic-beta": BETAS})
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == ANSWER and message.stop_reason == "end_turn"
    (seen,) = mock.requests
    assert seen.path == "chat/completions"
    assert seen.body == {"model": "gpt-4o-mini", "max_completion_tokens": 300, "user": "u-1",
                         "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Say hello"}]}
    # The client's x-api-key is the provider key, sent the provider's way; the Anthropic
    # headers stay behind.
    assert seen.headers["authorization"] == "Bearer sk-client-key"
    assert not {"x-api-key", "anthropic-beta", "anthropic-version"} & set(seen.headers)
    prompt = prompt_tokens(seen.body)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (prompt,
                                                                         len(STREAM_WORDS))
    row = usage_row(gateway, raw.headers["x-portkey-request-id"])
    assert (row["provider"], row["status_code"], row["prompt_tokens"],
            row["completion_tokens"]) == ("openai", 200, prompt, len(STREAM_WORDS))


def test_stream_is_anthropics_event_sequence(gateway: str, mock: MockUpstream) -> None:
    with sdk(gateway, "openai").messages.stream(
            model="gpt-4o-mini", max_tokens=300,
            messages=[{"role": "user", "content": "Say hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-portkey-request-id"]
    assert text == ANSWER
    assert [b.type for b in final.content] == ["text"] and final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == len(STREAM_WORDS)
    (seen,) = mock.requests
    assert seen.body["stream"] is True
    assert seen.body["stream_options"] == {"include_usage": True}
    row = usage_row(gateway, request_id)
    assert row["stream"] is True and row["completion_tokens"] == len(STREAM_WORDS)
    assert row["prompt_tokens"] == prompt_tokens(seen.body) and not row["tokens_estimated"]


@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_tool_round_trip(gateway: str, mock: MockUpstream, mock_url: str,
                         streamed: bool) -> None:
    client = sdk(gateway, "openai", **{"x-portkey-custom-host": f"{mock_url}/s/tool-once/v1"})
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    params: dict[str, Any] = {"model": "gpt-4o-mini", "max_tokens": 200, "tools": [WEATHER]}
    if streamed:
        with client.messages.stream(messages=ask, **params) as stream:
            first = stream.get_final_message()
    else:
        first = client.messages.create(messages=ask, **params)
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    name, arguments = TOOL_CALL
    assert call.name == name and call.input == json.loads("".join(arguments))
    answer = client.messages.create(messages=[
        *ask, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": "18C and sunny"}]}], **params)
    assert answer.content[0].text == ANSWER and answer.stop_reason == "end_turn"
    sent = mock.requests[-1].body
    assert sent["tools"][0]["function"]["name"] == name
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.id
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id,
                                   "content": "18C and sunny"}


def test_count_tokens_is_estimated_for_a_chat_target(gateway: str, mock: MockUpstream) -> None:
    client = sdk(gateway, "openai")
    raw = client.messages.with_raw_response.count_tokens(
        model="gpt-4o-mini", system="Be brief.", tools=[WEATHER],
        messages=[{"role": "user", "content": "How many tokens is this?"}])
    counted = raw.parse()
    body = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "How many tokens is this?"}],
            "tools": [{"type": "function", "function": {
                "name": WEATHER["name"], "parameters": WEATHER["input_schema"],
                "description": WEATHER["description"]}}]}
    assert counted.input_tokens == count_prompt(body) > 10
    assert mock.requests == []  # no upstream has count_tokens: nothing was sent
    row = usage_row(gateway, raw.headers["x-portkey-request-id"])
    assert (row["status_code"], row["prompt_tokens"], row["completion_tokens"]) == (200, 0, 0)


def test_errors_come_in_anthropics_shape(gateway: str, mock: MockUpstream,
                                         mock_url: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as missing:
        anthropic.Anthropic(api_key="k", base_url=gateway, max_retries=0).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["type"] == "error"
    assert missing.value.body["error"]["type"] == "invalid_request_error"
    assert "x-portkey-provider" in missing.value.body["error"]["message"]
    failing = sdk(gateway, "openai", **{"x-portkey-custom-host": f"{mock_url}/s/status-429/v1"})
    with pytest.raises(anthropic.RateLimitError) as limited:
        failing.messages.create(model="m", max_tokens=10,
                                messages=[{"role": "user", "content": "hi"}])
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    broken = sdk(gateway, "openai", **{"x-portkey-custom-host":
                                       f"{mock_url}/s/drop-mid-stream/v1"})
    with pytest.raises(anthropic.APIStatusError), broken.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
        stream.get_final_message()
    response = httpx.post(f"{gateway}/v1/messages", json={"model": "m", "messages": []},
                          headers={"x-portkey-provider": "openai"})
    assert response.status_code == 400
    assert response.json() == {"type": "error", "error": {
        "type": "invalid_request_error",
        "message": "'max_tokens' is required: the Messages API has no default"}}


def test_head_root_answers_claude_codes_check(gateway: str) -> None:
    assert httpx.head(f"{gateway}/").status_code == 200


def test_beta_query_string_is_served(gateway: str, mock: MockUpstream) -> None:
    response = httpx.post(f"{gateway}/v1/messages?beta=true", headers={
        "x-portkey-provider": "openai", "x-api-key": "k"}, json={
        "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["content"][0]["text"] == ANSWER


# -- to an Anthropic target: native ---------------------------------------------------------

def test_native_create_keeps_everything(gateway: str, upstream: FixtureUpstream) -> None:
    upstream.reply = Reply((FIXTURES / "anthropic" / "text" / "response.json").read_bytes())
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "system": [{"type": "text", "text": "Be terse.",
                    "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Capital of France?", "cache_control":
             {"type": "ephemeral"}}]}]}
    raw = sdk(gateway, "anthropic").messages.with_raw_response.create(
        **body, extra_headers={"anthropic-beta": BETAS, "anthropic-version": "2023-06-01"},
        extra_query={"beta": "true"},
        extra_body={"top_k": 5})
    message = raw.parse()
    assert message.model_dump(exclude_none=True) == anthropic.types.Message.model_validate(
        recorded("text")).model_dump(exclude_none=True)
    (seen,) = upstream.requests
    assert seen.path == "/anthropic/v1/messages" and seen.json == body | {"top_k": 5}
    assert seen.headers["x-api-key"] == "sk-client-key"
    assert seen.headers["anthropic-beta"] == BETAS
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert not any(name.startswith("x-portkey") for name in seen.headers)
    row = usage_row(gateway, raw.headers["x-portkey-request-id"])
    # Anthropic's input_tokens excludes the cache: the row's prompt includes it.
    assert (row["provider"], row["prompt_tokens"], row["completion_tokens"],
            row["cached_tokens"]) == ("anthropic", 12 + 2048, 3, 2048)


def test_native_stream_passes_the_events_through(gateway: str,
                                                 upstream: FixtureUpstream) -> None:
    upstream.reply = Reply((FIXTURES / "anthropic" / "tools" / "stream.sse").read_bytes(),
                           stream=True, content_type="text/event-stream")
    with sdk(gateway, "anthropic").messages.stream(
            model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER],
            messages=[{"role": "user", "content": "Paris and London?"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-portkey-request-id"]
    assert text == "I'll check both cities."
    assert final.model_dump(exclude_none=True) == anthropic.types.Message.model_validate(
        recorded("tools")).model_dump(exclude_none=True)
    row = usage_row(gateway, request_id)
    assert (row["stream"], row["prompt_tokens"], row["completion_tokens"]) == (True, 380, 96)


def test_native_tool_round_trip(gateway: str, upstream: FixtureUpstream) -> None:
    client = sdk(gateway, "anthropic")
    ask = [{"role": "user", "content": "Weather in Paris and London?"}]
    upstream.reply = Reply((FIXTURES / "anthropic" / "tools" / "response.json").read_bytes())
    first = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER],
                                   messages=ask)
    calls = [b for b in first.content if b.type == "tool_use"]
    assert first.stop_reason == "tool_use" and [c.input["city"] for c in calls] == [
        "Paris", "London"]
    upstream.reply = Reply((FIXTURES / "anthropic" / "tool_result" / "response.json")
                           .read_bytes())
    results = [{"type": "tool_result", "tool_use_id": c.id, "content": f"{c.input['city']} ok",
                "is_error": False} for c in calls]
    answer = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER],
                                    messages=[*ask, {"role": "assistant", "content": [
                                        b.model_dump(exclude_none=True) for b in first.content]},
                                        {"role": "user", "content": results}])
    assert answer.content[0].text.startswith("Paris is 18°C")
    assert upstream.requests[-1].json["messages"][2]["content"] == results


def test_native_count_tokens(gateway: str, upstream: FixtureUpstream) -> None:
    upstream.reply = Reply(b'{"input_tokens": 42}')
    raw = sdk(gateway, "anthropic").messages.with_raw_response.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().input_tokens == 42
    (seen,) = upstream.requests
    assert seen.path == "/anthropic/v1/messages/count_tokens"
    assert seen.json == {"model": "claude-sonnet-4-5",
                         "messages": [{"role": "user", "content": "hi"}]}
    row = usage_row(gateway, raw.headers["x-portkey-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (0, 0)  # counting is free


def test_native_error_keeps_anthropics_type(gateway: str, upstream: FixtureUpstream) -> None:
    upstream.reply = Reply((FIXTURES / "anthropic" / "error" / "error.json").read_bytes(),
                           status=429)
    with pytest.raises(anthropic.RateLimitError) as info:
        sdk(gateway, "anthropic").messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user",
                                                                 "content": "hi"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert "per-minute rate limit" in info.value.body["error"]["message"]


def test_vertex_claude_is_native_without_the_clients_betas(gateway: str,
                                                           upstream: FixtureUpstream) -> None:
    upstream.reply = Reply((FIXTURES / "vertex-ai" / "claude_text" / "response.json")
                           .read_bytes())
    client = sdk(gateway, "vertex-ai", **{"x-portkey-vertex-project-id": "p",
                                          "x-portkey-vertex-region": "us-east5"})
    body = {"model": "claude-sonnet-4-5@20250929", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}
    message = client.messages.create(**body, extra_headers={"anthropic-beta": BETAS},
                                     extra_body={"top_k": 3})
    assert message.type == "message"
    (seen,) = upstream.requests
    assert seen.path == ("/vertex-ai/v1/projects/p/locations/us-east5/publishers/anthropic/"
                         "models/claude-sonnet-4-5@20250929:rawPredict")
    assert seen.json == {"max_tokens": 64, "top_k": 3, "anthropic_version": "vertex-2023-10-16",
                         "messages": body["messages"]}
    assert "anthropic-beta" not in seen.headers  # Vertex refuses betas it does not know
    assert seen.headers["authorization"] == "Bearer sk-client-key"


BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BEDROCK = {f"x-portkey-{k}": v for k, v in OPTIONS["bedrock"].items()}


def invoke_stream(case: str) -> bytes:
    """Anthropic's recorded events as InvokeModelWithResponseStream frames them."""
    raw = (FIXTURES / "anthropic" / case / "stream.sse").read_text()
    events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    return b"".join(frame({":event-type": "chunk", ":content-type": "application/json",
                           ":message-type": "event"},
                          json.dumps({"bytes": base64.b64encode(e.encode()).decode()}).encode())
                    for e in events)


@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "invoke-stream"])
def test_bedrock_claude_is_native_through_invoke_model(gateway: str, upstream: FixtureUpstream,
                                                       streamed: bool) -> None:
    if streamed:
        upstream.reply = Reply(invoke_stream("tools"), stream=True,
                               content_type="application/vnd.amazon.eventstream")
    else:
        upstream.reply = Reply((FIXTURES / "anthropic" / "tools" / "response.json")
                               .read_bytes())
    client = sdk(gateway, "bedrock", **BEDROCK)
    params: dict[str, Any] = {
        "model": BEDROCK_MODEL, "max_tokens": 256, "tools": [WEATHER],
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Paris and London?"}]}
    if streamed:
        with client.messages.stream(**params, extra_headers={"anthropic-beta": BETAS}) as stream:
            final = stream.get_final_message()
            request_id = stream.response.headers["x-portkey-request-id"]
    else:
        raw = client.messages.with_raw_response.create(**params,
                                                       extra_headers={"anthropic-beta": BETAS})
        final, request_id = raw.parse(), raw.headers["x-portkey-request-id"]
    assert final.model_dump(exclude_none=True) == anthropic.types.Message.model_validate(
        recorded("tools")).model_dump(exclude_none=True)
    (seen,) = upstream.requests
    action = "invoke-with-response-stream" if streamed else "invoke"
    assert seen.path == f"/bedrock/model/{quote(BEDROCK_MODEL, safe='')}/{action}"
    sent = {k: v for k, v in params.items() if k != "model"}
    assert seen.json == sent | {"anthropic_version": "bedrock-2023-05-31"}
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert "anthropic-beta" not in seen.headers and "sk-client-key" not in str(seen.headers)
    row = usage_row(gateway, request_id)
    assert (row["provider"], row["prompt_tokens"], row["completion_tokens"]) == (
        "bedrock", 380, 96)


def test_fallback_from_native_to_translated(gateway: str, upstream: FixtureUpstream,
                                            mock: MockUpstream) -> None:
    """Each target is native or not on its own: Anthropic fails, OpenAI answers, and the
    client gets a Message either way."""
    upstream.reply = Reply(b'{"type":"error","error":{"type":"overloaded_error",'
                           b'"message":"Overloaded"}}', status=529)
    config = {"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "anthropic", "api_key": "sk-ant"},
        {"provider": "openai", "api_key": "sk-oai",
         "override_params": {"model": "gpt-4o-mini"}}]}
    client = anthropic.Anthropic(api_key="unused", base_url=gateway, max_retries=0,
                                 default_headers={"x-portkey-config": json.dumps(config)})
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == ANSWER
    assert upstream.requests[0].headers["x-api-key"] == "sk-ant"
    assert mock.requests[0].body["model"] == "gpt-4o-mini"


def test_guardrails_apply_and_output_hooks_read_a_translated_answer(
        gateway: str, upstream: FixtureUpstream, mock: MockUpstream) -> None:
    deny = {"provider": "openai", "input_guardrails": [
        {"default.contains": {"words": ["DROP TABLE"], "operator": "none"}, "deny": True}]}
    client = anthropic.Anthropic(api_key="k", base_url=gateway, max_retries=0,
                                 default_headers={"x-portkey-config": json.dumps(deny)})
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="m", max_tokens=10,
                               messages=[{"role": "user", "content": "DROP TABLE users"}])
    assert info.value.status_code == 446 and mock.requests == []
    assert info.value.body["type"] == "error"
    # Output hooks read canonical answers: the Anthropic target is sent the translated body.
    upstream.reply = Reply((FIXTURES / "anthropic" / "text" / "response.json").read_bytes())
    check = {"provider": "anthropic", "output_guardrails": [
        {"default.wordCount": {"minWords": 0, "maxWords": 50}}]}
    client = anthropic.Anthropic(api_key="k", base_url=gateway, max_retries=0,
                                 default_headers={"x-portkey-config": json.dumps(check)})
    answer = client.messages.create(model="claude-sonnet-4-5", max_tokens=10,
                                    extra_body={"top_k": 3},
                                    messages=[{"role": "user", "content": "Capital?"}])
    assert answer.content[0].text == "Paris."
    assert answer.model_extra is not None and "hook_results" in answer.model_extra
    assert "top_k" not in upstream.requests[0].json  # translated: top_k has no chat field


def test_untranslatable_content_is_refused_only_by_translating_targets(
        gateway: str, upstream: FixtureUpstream, mock: MockUpstream) -> None:
    document = {"type": "document", "source": {"type": "url",
                                               "url": "https://example.com/report.pdf"}}
    body: dict[str, Any] = {"model": "m", "max_tokens": 64, "messages": [
        {"role": "user", "content": [document, {"type": "text", "text": "Summarise"}]}]}
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(gateway, "openai").messages.create(**body)
    assert "messages[0].content[0].source" in info.value.body["error"]["message"]
    assert mock.requests == []
    upstream.reply = Reply((FIXTURES / "anthropic" / "text" / "response.json").read_bytes())
    sdk(gateway, "anthropic").messages.create(**body)
    assert upstream.requests[0].json == body


def test_native_answers_are_cached_and_replayed_as_streams(gateway: str,
                                                            upstream: FixtureUpstream) -> None:
    upstream.reply = Reply((FIXTURES / "anthropic" / "tools" / "stream.sse").read_bytes(),
                           stream=True, content_type="text/event-stream")
    config = json.dumps({"provider": "anthropic", "cache": {"mode": "simple"}})
    client = anthropic.Anthropic(api_key="sk-cache", base_url=gateway, max_retries=0,
                                 default_headers={"x-portkey-config": config})
    params: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 256,
                              "tools": [WEATHER], "messages": [
                                  {"role": "user", "content": "Paris and London, cached?"}]}
    with client.messages.stream(**params) as stream:
        live = stream.get_final_message()
        assert stream.response.headers["x-portkey-cache-status"] == "MISS"
    raw = client.messages.with_raw_response.create(**params)
    assert raw.headers["x-portkey-cache-status"] == "HIT"
    whole = live.model_dump(exclude_none=True)
    assert raw.parse().model_dump(exclude_none=True) == whole == anthropic.types.Message.\
        model_validate(recorded("tools")).model_dump(exclude_none=True)
    with client.messages.stream(**params) as stream:
        replayed = stream.get_final_message()
        assert stream.response.headers["x-portkey-cache-status"] == "HIT"
    assert replayed.model_dump(exclude_none=True) == whole
    assert len(upstream.requests) == 1


def test_guarded_requests_go_translated_and_native_only_content_is_refused(
        gateway: str, upstream: FixtureUpstream) -> None:
    """Review finding: content with no chat form kept a request native, where neither input
    nor output guardrails could read it. Guardrails read what is sent: a guarded request goes
    translated to every target, and one that cannot be translated is refused, unsent."""
    hidden = {"type": "search_result", "source": "https://example.com", "title": "t",
              "content": [{"type": "text", "text": "DROP TABLE users"}]}
    guard = {"provider": "anthropic", "input_guardrails": [
        {"default.contains": {"words": ["DROP TABLE"], "operator": "none"}, "deny": True}]}
    client = anthropic.Anthropic(api_key="k", base_url=gateway, max_retries=0,
                                 default_headers={"x-portkey-config": json.dumps(guard)})
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[
            {"role": "user", "content": [{"type": "text", "text": "summarise"}, hidden]}])
    assert "guardrails" in info.value.body["error"]["message"]
    assert upstream.requests == []


def test_a_native_stream_cut_before_its_end_is_estimated_not_billed_one_token(
        gateway: str, upstream: FixtureUpstream) -> None:
    """Review finding: message_start's `output_tokens: 1` was taken as the stream's usage, so
    a stream cut before message_delta was billed one token whatever it had relayed."""
    whole = (FIXTURES / "anthropic" / "text" / "stream.sse").read_bytes()
    upstream.reply = Reply(whole[:whole.index(b"event: message_delta")], stream=True,
                           content_type="text/event-stream")
    response = httpx.post(f"{gateway}/v1/messages", timeout=30, headers={
        "x-portkey-provider": "anthropic", "x-api-key": "sk-client-key"}, json={
        "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "Capital of France? " * 50}]})
    assert "event: error" in response.text  # the cut is reported, not a clean end
    row = usage_row(gateway, response.headers["x-portkey-request-id"])
    assert row["tokens_estimated"] is True
    assert row["prompt_tokens"] > 100  # the whole prompt, estimated, not message_start's 1


def test_usage_rows_record_the_dialect_and_admin_logs_filter_by_it(
        gateway: str, mock: MockUpstream) -> None:
    answer = sdk(gateway, "openai").messages.with_raw_response.create(
        model="m", max_tokens=16, messages=[{"role": "user", "content": "dialect?"}])
    request_id = answer.headers["x-portkey-request-id"]
    assert usage_row(gateway, request_id)["dialect"] == "messages"
    chat = httpx.post(f"{gateway}/v1/chat/completions", timeout=30, headers={
        "x-portkey-provider": "openai", "authorization": "Bearer sk-client-key"},
        json={"model": "m", "messages": [{"role": "user", "content": "dialect?"}]})
    assert usage_row(gateway, chat.headers["x-portkey-request-id"])["dialect"] == "chat"
    with httpx.Client(base_url=gateway, timeout=30,
                      headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        listed = admin.get("/admin/logs", params={"dialect": "messages", "limit": 200}).json()
        assert {row["dialect"] for row in listed["data"]} == {"messages"}
        assert request_id in {row["id"] for row in listed["data"]}
        refused = admin.get("/admin/logs", params={"dialect": "klingon"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "dialect"
