"""The output-token clamp of the translated dialects: the shipped per-model table, the
operator's GATEWAY_MODEL_OUTPUT_LIMITS, the rule in `prepare` (translated Messages and
Responses bodies only, never a native target, a chat client or a config's own value), and
the anthropic and openai SDKs against a real gateway whose loopback upstream records what
it was sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import orjson
import pytest
from anthropic.types import MessageParam, TextBlock
from pydantic import ValidationError
from starlette.datastructures import Headers

from gateway.contracts.plan import Leaf
from gateway.contracts.request import ParsedRequest
from gateway.pipeline.dialects.messages import MESSAGES
from gateway.pipeline.output_limits import OutputLimits, load_limits
from gateway.pipeline.prepare import prepare
from gateway.settings import Settings
from providers import REGISTRY
from providers.base import Endpoint
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.servers import ThreadedServer

SHIPPED = OutputLimits(load_limits())
CLAUDE_CODE_ASKS = 32000  # reference/dialects-and-guardrails.md §3.2a


# -- the table -------------------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "model", "limit"), [
    ("openai", "gpt-4o", 16384),
    ("openai", "gpt-4o-2024-08-06", 16384),  # a dated id: its base model's row
    ("openai", "gpt-4o-2024-05-13", 4096),  # a dated id with a row of its own wins
    ("openai", "gpt-4.1-mini", 32768),
    ("openai", "o3-mini-2025-01-31", 100000),
    ("azure-openai", "gpt-4o-mini", 16384),  # a reseller: the vendor's row
    ("anthropic", "claude-sonnet-4-5-20250929", 64000),
    ("anthropic", "claude-3-5-haiku-latest", 8192),
    ("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", 8192),
    ("vertex-ai", "claude-opus-4-1@20250805", 32000),
    ("vertex-ai", "gemini-2.5-pro", 65536),
    ("google", "models/gemini-2.0-flash-001", 8192),
    ("deepseek", "deepseek-chat", 8192),
])
def test_known_models_have_their_vendors_limit(provider: str, model: str, limit: int) -> None:
    assert SHIPPED.limit(provider, model) == limit


@pytest.mark.parametrize(("provider", "model"), [
    ("openai", "my-fine-tune"), ("vllm", "Qwen/Qwen3-Coder-30B-A3B-Instruct"),
    ("anyscale", "gpt-4o"),  # another host's model of that name: not OpenAI's row
    ("openai", None), ("openai", ""),
])
def test_unknown_models_have_no_limit(provider: str, model: str | None) -> None:
    assert SHIPPED.limit(provider, model) is None


def test_the_shipped_table_names_real_providers_and_positive_limits() -> None:
    table = load_limits()
    assert set(table) <= set(REGISTRY)
    assert all(type(n) is int and n > 0 for rows in table.values() for n in rows.values())


def test_operator_rows_override_and_add() -> None:
    limits = OutputLimits(load_limits(), {"openai/gpt-4o": 1000, "gpt-4o": 2000,
                                          "claude-sonnet-4-5": 3000, "vllm/qwen": 4096})
    assert limits.limit("openai", "gpt-4o") == 1000  # provider/model first
    assert limits.limit("azure-openai", "gpt-4o") == 2000  # then the bare model
    assert limits.limit("anthropic", "claude-sonnet-4-5-20250929") == 3000  # by base model
    assert limits.limit("vllm", "qwen") == 4096
    assert limits.limit("openai", "gpt-4.1") == 32768  # the rest of the table stays


def test_settings_read_the_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_MODEL_OUTPUT_LIMITS", '{"vllm/qwen": 8192, "gpt-4o": 100}')
    assert Settings(_env_file=None).model_output_limits == {"vllm/qwen": 8192, "gpt-4o": 100}


@pytest.mark.parametrize("bad", ['{"vllm/qwen": 0}', '{"vllm/qwen": -5}',
                                 '{"vllm/qwen": "many"}', '[8192]'])
def test_bad_limits_are_refused_at_startup(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("GATEWAY_MODEL_OUTPUT_LIMITS", bad)
    with pytest.raises(ValidationError, match="model_output_limits"):
        Settings(_env_file=None)


# -- the rule in prepare ---------------------------------------------------------------------

def messages_request(model: str, max_tokens: int) -> ParsedRequest:
    raw = orjson.dumps({"model": model, "max_tokens": max_tokens,
                        "messages": [{"role": "user", "content": "hi"}]})
    decoded = MESSAGES.decode(Endpoint.CHAT, raw)
    return ParsedRequest(request_id="r", trace_id="t", endpoint=Endpoint.CHAT, method="POST",
                         path="messages", query="", headers=Headers({}), raw_body=raw,
                         body=decoded.body, dialect="messages", native_body=decoded.native)


def chat_request(body: dict[str, Any], dialect: str = "chat") -> ParsedRequest:
    return ParsedRequest(request_id="r", trace_id="t", endpoint=Endpoint.CHAT, method="POST",
                         path="chat/completions", query="", headers=Headers({}), raw_body=b"",
                         body=body, dialect=dialect)


def sent(request: ParsedRequest, provider: str, guarded: bool = False,
         **override: Any) -> dict[str, Any]:
    leaf = Leaf(path="config", provider=provider, override_params=override)
    prepared = prepare(request, leaf, REGISTRY[provider], guarded=guarded, limits=SHIPPED)
    body = prepared.native if prepared.native is not None else prepared.body
    assert body is not None
    return body


def test_a_translated_messages_body_is_clamped_to_the_target_model() -> None:
    request = messages_request("gpt-4o-mini", CLAUDE_CODE_ASKS)
    assert sent(request, "openai")["max_completion_tokens"] == 16384
    assert request.body is not None and request.body["max_completion_tokens"] == 32000


def test_below_the_limit_and_unknown_models_go_as_asked() -> None:
    assert sent(messages_request("gpt-4o-mini", 1), "openai")["max_completion_tokens"] == 1
    unknown = messages_request("mock-model", CLAUDE_CODE_ASKS)
    assert sent(unknown, "openai")["max_completion_tokens"] == CLAUDE_CODE_ASKS
    assert sent(unknown, "vllm")["max_completion_tokens"] == CLAUDE_CODE_ASKS


def test_the_model_a_target_overrides_is_the_one_clamped_for() -> None:
    request = messages_request("claude-opus-4-1", CLAUDE_CODE_ASKS)
    assert sent(request, "openai", model="gpt-4.1")["max_completion_tokens"] == 32000
    assert sent(request, "openai", model="gpt-4o")["max_completion_tokens"] == 16384


def test_a_configs_own_max_completion_tokens_is_not_clamped() -> None:
    request = messages_request("gpt-4o", CLAUDE_CODE_ASKS)
    assert sent(request, "openai", max_completion_tokens=50000)["max_completion_tokens"] == 50000
    # Set as max_tokens, the operator's value is theirs too: the client's is not lowered under it.
    body = sent(request, "openai", max_tokens=50000)
    assert body["max_tokens"] == 50000 and body["max_completion_tokens"] == CLAUDE_CODE_ASKS


def test_a_native_target_gets_the_clients_value_and_a_translated_claude_is_clamped() -> None:
    request = messages_request("claude-3-5-haiku-20241022", CLAUDE_CODE_ASKS)
    assert sent(request, "anthropic")["max_tokens"] == CLAUDE_CODE_ASKS  # native: as sent
    # Guardrails make the same target take the translated body: clamped to Claude's limit.
    guarded = sent(request, "anthropic", guarded=True)
    assert guarded["max_completion_tokens"] == 8192 and "max_tokens" not in guarded


def test_responses_are_clamped_and_chat_clients_are_not() -> None:
    body = {"model": "gpt-4o", "messages": [], "max_completion_tokens": 100000}
    assert sent(chat_request(body, "responses"), "groq")["max_completion_tokens"] == 100000
    body["model"] = "llama-3.3-70b-versatile"
    assert sent(chat_request(body, "responses"), "groq")["max_completion_tokens"] == 32768
    assert sent(chat_request(body), "groq")["max_completion_tokens"] == 100000


# -- through the SDKs, against a real gateway ------------------------------------------------

def test_claude_codes_max_tokens_reaches_a_chat_target_clamped(
        start_gateway: Callable[..., ThreadedServer], mock: MockUpstream) -> None:
    gateway = start_gateway(model_output_limits={"openai/mock-model": 1000})
    # A timeout of its own: the SDK refuses a non-streamed 32000 under its default one.
    client = anthropic.Anthropic(api_key="sk-client-key", base_url=gateway.url, timeout=30,
                                 max_retries=0, default_headers={"x-portkey-provider": "openai"})
    turn: list[MessageParam] = [{"role": "user", "content": "Say hello"}]
    message = client.messages.create(model="gpt-4o-mini", max_tokens=CLAUDE_CODE_ASKS,
                                     messages=turn)
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "".join(STREAM_WORDS)
    with client.messages.stream(model="gpt-4o-mini", max_tokens=CLAUDE_CODE_ASKS,
                                messages=turn) as stream:
        assert stream.get_final_message().stop_reason == "end_turn"
    client.messages.create(model="mock-model", max_tokens=CLAUDE_CODE_ASKS,
                           messages=turn)  # the operator's row
    client.messages.create(model="other-model", max_tokens=CLAUDE_CODE_ASKS,
                           messages=turn)  # unknown: as sent
    config = {"provider": "openai", "override_params": {"model": "gpt-4o"}}
    client.messages.create(model="claude-sonnet-4-5", max_tokens=CLAUDE_CODE_ASKS,
                           messages=turn,
                           extra_headers={"x-portkey-config": json.dumps(config)})
    seen = [(r.body["model"], r.body["max_completion_tokens"], bool(r.body.get("stream")))
            for r in mock.requests]
    assert seen == [("gpt-4o-mini", 16384, False), ("gpt-4o-mini", 16384, True),
                    ("mock-model", 1000, False), ("other-model", CLAUDE_CODE_ASKS, False),
                    ("gpt-4o", 16384, False)]


def test_responses_max_output_tokens_reaches_a_chat_target_clamped(
        gateway: ThreadedServer, mock: MockUpstream) -> None:
    client = openai.OpenAI(api_key="sk-client-key", base_url=f"{gateway.url}/v1", max_retries=0,
                           default_headers={"x-portkey-provider": "groq"})
    model = "llama-3.3-70b-versatile"  # 32768 in the shipped table
    answer = client.responses.create(model=model, input="Say hello", max_output_tokens=100000)
    assert answer.output_text == "".join(STREAM_WORDS)
    # The Response reports what the target was sent, stored and retrieved alike.
    assert answer.max_output_tokens == 32768
    assert client.responses.retrieve(answer.id).max_output_tokens == 32768
    with client.responses.stream(model=model, input="Say hello",
                                 max_output_tokens=100000) as stream:
        events = list(stream)
    created, completed = events[0], events[-1]
    assert created.type == "response.created" and completed.type == "response.completed"
    assert created.response.max_output_tokens == completed.response.max_output_tokens == 32768
    assert client.responses.retrieve(completed.response.id).max_output_tokens == 32768
    # Not lowered, or not asked for: as the client asked.
    assert client.responses.create(model=model, input="Hi",
                                   max_output_tokens=100).max_output_tokens == 100
    assert client.responses.create(model=model, input="Hi").max_output_tokens is None
    assert [r.body.get("max_completion_tokens") for r in mock.requests] == [32768, 32768, 100,
                                                                            None]
