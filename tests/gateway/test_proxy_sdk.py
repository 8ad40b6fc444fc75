"""The gateway core through the real OpenAI and portkey-ai SDKs, against a real mock upstream."""

from __future__ import annotations

import openai
import pytest
from portkey_ai import Portkey, createHeaders

from tests.support.mock_upstream import STREAM_WORDS, MockUpstream, prompt_tokens
from tests.support.servers import ThreadedServer

MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello to the gateway"}]


def openai_client(gateway: ThreadedServer, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-provider-key", base_url=f"{gateway.url}/v1",
                         default_headers=createHeaders(provider="anyscale", **headers),
                         max_retries=0)


def test_chat_non_stream_reaches_upstream_with_provider_auth(gateway, mock: MockUpstream):
    client = openai_client(gateway)
    raw = client.chat.completions.with_raw_response.create(
        model="mistralai/Mistral-7B-Instruct-v0.1", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)
    assert completion.usage.prompt_tokens == prompt_tokens({"messages": MESSAGES})
    assert raw.headers["x-portkey-provider"] == "anyscale"
    assert raw.headers["x-portkey-request-id"]
    assert raw.headers["x-portkey-trace-id"]
    (seen,) = mock.requests
    assert seen.path == "chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-provider-key"
    assert not any(name.startswith("x-portkey") for name in seen.headers)
    assert seen.body == {"model": "mistralai/Mistral-7B-Instruct-v0.1", "messages": MESSAGES}


def test_chat_stream_relays_every_chunk_and_hides_injected_usage(gateway, mock: MockUpstream):
    client = openai_client(gateway)
    chunks = list(client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(STREAM_WORDS)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # The gateway asked the upstream for usage so that it can record tokens.
    assert mock.requests[0].body["stream_options"] == {"include_usage": True}


def test_chat_stream_keeps_usage_when_client_asks(gateway, mock: MockUpstream):
    client = openai_client(gateway)
    chunks = list(client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == len(STREAM_WORDS)


def test_completions_legacy_api_stream_and_non_stream(gateway, mock: MockUpstream):
    client = openai_client(gateway)
    done = client.completions.create(model="m", prompt="<s>[INST] Tell a joke [/INST]",
                                     max_tokens=10)
    assert done.choices[0].text == "".join(STREAM_WORDS)
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="m", prompt="hi", stream=True) if c.choices)
    assert streamed == "".join(STREAM_WORDS)
    assert [r.path for r in mock.requests] == ["completions", "completions"]


def test_embeddings_and_models(gateway, mock: MockUpstream):
    client = openai_client(gateway)
    result = client.embeddings.create(model="thenlper/gte-large", input=["a b", "c"])
    assert len(result.data) == 2
    assert [m.id for m in client.models.list()] == ["mock-model"]
    assert [r.path for r in mock.requests] == ["embeddings", "models"]


def test_vllm_extra_parameters_reach_upstream_unchanged(gateway, mock: MockUpstream):
    extras = {"top_k": 5, "min_p": 0.1, "repetition_penalty": 1.2, "best_of": 2,
              "use_beam_search": False, "ignore_eos": True, "stop_token_ids": [2, 7],
              "length_penalty": 1.0, "skip_special_tokens": False,
              "include_stop_str_in_output": True, "guided_json": {"type": "object"}}
    client = openai_client(gateway)
    client.chat.completions.create(model="m", messages=MESSAGES, extra_body=extras)
    client.completions.create(model="m", prompt="x", echo=True, logprobs=2, seed=3,
                              extra_body=extras)
    for seen in mock.requests:
        for key, value in extras.items():
            assert seen.body[key] == value
    assert mock.requests[1].body["echo"] is True


def test_portkey_sdk_client(gateway, mock: MockUpstream):
    client = Portkey(base_url=f"{gateway.url}/v1", provider="anyscale",
                     Authorization="Bearer esecret_abc", api_key="unused-in-core")
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "".join(STREAM_WORDS)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True) if c.choices)
    assert streamed == "".join(STREAM_WORDS)
    assert mock.requests[0].headers["authorization"] == "Bearer esecret_abc"


def test_upstream_error_status_passes_through_prefixed(gateway, mock: MockUpstream, mock_url):
    client = openai_client(gateway, custom_host=f"{mock_url}/s/status-429/v1")
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.body["message"] == "anyscale error: scripted failure 429"
    assert info.value.body["code"] == "mock_429"


def test_unreachable_upstream_is_502(gateway, mock: MockUpstream):
    from tests.support.servers import free_port
    client = openai_client(gateway, custom_host=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 502
    assert "unreachable" in info.value.message
