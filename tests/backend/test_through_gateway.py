"""The bundled backend (real vLLM on CPU, tiny model) through the gateway with the OpenAI SDK."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from portkey_ai import createHeaders

from tests.support.backend_process import BackendProcess
from tests.support.recording import add_recorder
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]
# vLLM's own parameters are not in the OpenAI SDK's signatures: they go in extra_body.
IGNORE_EOS = {"ignore_eos": True}


@pytest.fixture
def vllm_gateway(start_gateway: Callable[..., ThreadedServer],
                 vllm_backend: BackendProcess) -> ThreadedServer:
    return start_gateway(vllm_url=f"{vllm_backend.url}/v1", vllm_api_key=vllm_backend.api_key,
                         provider_base_urls={})


@pytest.fixture
def client(vllm_gateway: ThreadedServer) -> openai.OpenAI:
    # The client's key is not the backend's: the gateway sends its own (GATEWAY_VLLM_API_KEY).
    return openai.OpenAI(api_key="sk-not-the-backend-key", base_url=f"{vllm_gateway.url}/v1",
                         max_retries=0, default_headers=createHeaders(provider="vllm"))


@pytest.fixture
def recorded(vllm_gateway: ThreadedServer) -> list[Any]:
    """Every request outcome the running gateway hands to its recorders (usage logging's hook)."""
    outcomes: list[Any] = []
    add_recorder(vllm_gateway, outcomes.append)
    return outcomes


def one_record(recorded: list[Any]) -> Any:
    """The single recorded request; a stream is recorded just after its last byte went out."""
    wait_until(lambda: recorded)
    (ctx,) = recorded
    return ctx


def test_chat_through_gateway_returns_vllm_completion(client, vllm_backend, recorded):
    raw = client.chat.completions.with_raw_response.create(
        model=vllm_backend.model, messages=MESSAGES, max_tokens=8, extra_body=IGNORE_EOS)
    completion = raw.parse()
    assert raw.headers["x-portkey-provider"] == "vllm"
    assert completion.model == vllm_backend.model
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens == 8
    assert completion.usage.prompt_tokens > 0
    # The gateway kept vLLM's own token counts for the usage record.
    ctx = one_record(recorded)
    assert ctx.usage["prompt_tokens"] == completion.usage.prompt_tokens
    assert ctx.usage["completion_tokens"] == 8


def test_completions_through_gateway(client, vllm_backend):
    completion = client.completions.create(
        model=vllm_backend.model, prompt="Open source models", max_tokens=6, echo=True,
        extra_body=IGNORE_EOS)
    assert completion.object == "text_completion"
    # echo reached vLLM: the prompt comes back in front of the generated text.
    assert completion.choices[0].text.startswith("Open source models")
    assert completion.usage.completion_tokens == 6


def test_chat_stream_with_usage(client, vllm_backend, recorded):
    chunks = list(client.chat.completions.create(
        model=vllm_backend.model, messages=MESSAGES, max_tokens=10, extra_body=IGNORE_EOS,
        stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces)
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage.completion_tokens == 10
    assert usage.total_tokens == usage.prompt_tokens + 10
    ctx = one_record(recorded)
    assert ctx.usage["completion_tokens"] == 10
    assert ctx.usage["prompt_tokens"] == usage.prompt_tokens


def test_stream_without_usage_still_records_vllm_counts(client, vllm_backend, recorded):
    chunks = list(client.completions.create(
        model=vllm_backend.model, prompt="Tokens stream back", max_tokens=5, stream=True,
        extra_body=IGNORE_EOS))
    assert all(c.usage is None for c in chunks)
    ctx = one_record(recorded)
    assert ctx.usage["completion_tokens"] == 5
    assert ctx.usage["prompt_tokens"] > 0


def test_n_returns_that_many_choices(client, vllm_backend):
    completion = client.chat.completions.create(
        model=vllm_backend.model, messages=MESSAGES, n=2, max_tokens=6, extra_body=IGNORE_EOS,
        temperature=1.0)
    assert sorted(choice.index for choice in completion.choices) == [0, 1]
    assert completion.usage.completion_tokens == 12


def test_fixed_seed_gives_same_text_and_another_seed_differs(client, vllm_backend):
    def sample(seed: int) -> str:
        completion = client.chat.completions.create(
            model=vllm_backend.model, messages=MESSAGES, temperature=1.0, seed=seed,
            max_tokens=16, extra_body=IGNORE_EOS)
        return completion.choices[0].message.content or ""

    first = sample(1234)
    assert sample(1234) == first
    assert sample(98765) != first


def test_max_tokens_respected(client, vllm_backend):
    completion = client.completions.create(
        model=vllm_backend.model, prompt="A gateway", max_tokens=3, extra_body=IGNORE_EOS)
    assert completion.usage.completion_tokens == 3
    assert completion.choices[0].finish_reason == "length"


def test_ignore_eos_honoured(client, vllm_backend):
    # The tiny model is built so that greedy decoding of the probe prompt emits EOS early.
    probe = vllm_backend.probe
    stopped = client.completions.create(
        model=vllm_backend.model, prompt=probe["prompt"], max_tokens=12, temperature=0)
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.usage.completion_tokens == probe["eos_after"] + 1  # the EOS itself counts
    ignored = client.completions.create(
        model=vllm_backend.model, prompt=probe["prompt"], max_tokens=12, temperature=0,
        extra_body=IGNORE_EOS)
    assert ignored.choices[0].finish_reason == "length"
    assert ignored.usage.completion_tokens == 12


def test_stop_token_ids_honoured(client, vllm_backend):
    probe = vllm_backend.probe
    second = probe["greedy_ids"][1]
    completion = client.completions.create(
        model=vllm_backend.model, prompt=probe["prompt"], max_tokens=12, temperature=0,
        extra_body={"ignore_eos": True, "stop_token_ids": [second]})
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].stop_reason == second
    assert completion.usage.completion_tokens == 2


def test_logprobs_and_sampling_parameters_accepted(client, vllm_backend):
    completion = client.completions.create(
        model=vllm_backend.model, prompt="Hello", max_tokens=4, logprobs=2, n=2, best_of=2,
        seed=7, extra_body={
            "top_k": 5, "min_p": 0.05, "repetition_penalty": 1.1, "length_penalty": 1.0,
            "use_beam_search": False, "ignore_eos": True, "stop_token_ids": [],
            "skip_special_tokens": True, "include_stop_str_in_output": False})
    assert len(completion.choices) == 2
    assert len(completion.choices[0].logprobs.tokens) == 4
    # vLLM gives the 2 best plus the sampled token when that is not among them.
    assert all(2 <= len(top) <= 3 for top in completion.choices[0].logprobs.top_logprobs)


def test_beam_search_reaches_vllm(client, vllm_backend):
    completion = client.completions.create(
        model=vllm_backend.model, prompt="Hello", max_tokens=4, n=2,
        extra_body={"use_beam_search": True, "length_penalty": 0.5})
    assert len(completion.choices) == 2


# An invalid value for each seed parameter: vLLM's validation error, naming the parameter,
# comes back through the gateway; so the parameter reached vLLM and was read there.
INVALID = {
    "n": 0, "top_k": -5, "min_p": 2.0, "repetition_penalty": -1.0, "length_penalty": "x",
    "use_beam_search": "maybe", "ignore_eos": "maybe", "stop_token_ids": "x",
    "skip_special_tokens": "maybe", "include_stop_str_in_output": "maybe", "echo": "maybe",
    "logprobs": -3, "seed": "x",
}


@pytest.mark.parametrize(("param", "value"), list(INVALID.items()))
def test_each_seed_parameter_reaches_vllm(client, vllm_backend, param, value):
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=vllm_backend.model, prompt="Hello", max_tokens=2,
                                  extra_body={param: value})
    assert caught.value.status_code == 400
    assert param in str(caught.value)
    assert "vllm" in str(caught.value).lower()


def test_models_listed_without_provider_header(vllm_gateway, vllm_backend):
    response = httpx.get(f"{vllm_gateway.url}/v1/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [vllm_backend.model]
    models = openai.OpenAI(api_key="placeholder", base_url=f"{vllm_gateway.url}/v1").models.list()
    assert [m.id for m in models] == [vllm_backend.model]


def test_backend_rejects_calls_without_its_key(vllm_backend):
    body = {"model": vllm_backend.model, "prompt": "Hello", "max_tokens": 2}
    missing = httpx.post(f"{vllm_backend.url}/v1/completions", json=body)
    assert missing.status_code == 401
    wrong = httpx.post(f"{vllm_backend.url}/v1/completions", json=body,
                       headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 401
    right = httpx.post(f"{vllm_backend.url}/v1/completions", json=body,
                       headers={"Authorization": f"Bearer {vllm_backend.api_key}"})
    assert right.status_code == 200


def test_gateway_without_backend_key_gets_backend_401(start_gateway, vllm_backend):
    gateway = start_gateway(vllm_url=f"{vllm_backend.url}/v1", provider_base_urls={})
    client = openai.OpenAI(api_key="sk-not-the-backend-key", base_url=f"{gateway.url}/v1",
                           max_retries=0, default_headers=createHeaders(provider="vllm"))
    with pytest.raises(openai.AuthenticationError):
        client.completions.create(model=vllm_backend.model, prompt="Hello", max_tokens=2)


def test_usage_row_holds_vllms_real_token_counts_and_the_operator_price(
        start_gateway: Callable[..., ThreadedServer], vllm_backend: BackendProcess, tmp_path):
    model = next(iter(openai.OpenAI(api_key=vllm_backend.api_key,
                                    base_url=f"{vllm_backend.url}/v1").models.list())).id
    gateway = start_gateway(vllm_url=f"{vllm_backend.url}/v1", vllm_api_key=vllm_backend.api_key,
                            provider_base_urls={}, usage_flush_interval_s=0.05,
                            model_prices={f"vllm/{model}": {"input": 1.0, "output": 2.0}})
    sdk = openai.OpenAI(api_key="sk-x", base_url=f"{gateway.url}/v1", max_retries=0,
                        default_headers=createHeaders(provider="vllm"))
    raw = sdk.chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, max_tokens=7, extra_body=IGNORE_EOS)
    usage = raw.parse().usage
    request_id = raw.headers["x-portkey-request-id"]
    import sqlite3
    from decimal import Decimal
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        with sqlite3.connect(tmp_path / "gateway.sqlite3") as db:
            row = db.execute("SELECT prompt_tokens, completion_tokens, tokens_estimated, "
                             "cost_usd, provider FROM request_logs WHERE id = ?",
                             (request_id,)).fetchone()
        time.sleep(0.05)
    assert row is not None
    assert row[:3] == (usage.prompt_tokens, 7, 0)
    expected = (Decimal(usage.prompt_tokens) * 1 + Decimal(7) * 2) / 1_000_000
    # SQLite keeps NUMERIC as a float (Postgres keeps the exact decimal: see tests/gateway/usage).
    assert abs(Decimal(str(row[3])) - expected) < Decimal("1e-15") and row[4] == "vllm"
