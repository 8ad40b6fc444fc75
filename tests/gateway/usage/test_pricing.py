"""Prices: the shipped table, dated ids, resellers, overrides, and exact costs."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from gateway.usage.pricing import Price, PriceBook, base_model, load_table
from gateway.usage.tokens import Tokens, count, estimate, from_usage


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(load_table())


@pytest.mark.parametrize(("model", "base"), [
    ("gpt-4o-2024-08-06", "gpt-4o"), ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"), ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
    ("us.anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
    ("gemini-1.5-pro-002", "gemini-1.5-pro"), ("models/gemini-2.0-flash", "gemini-2.0-flash"),
    ("mistral-large-latest", "mistral-large"),
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-Instruct-v0.1"),
])
def test_dated_ids_match_their_base_model(model, base):
    assert base_model(model) == base


def test_table_covers_every_required_vendor_and_states_its_source():
    from importlib import resources
    raw = orjson.loads(resources.files("gateway").joinpath("data/prices.json").read_bytes())
    assert raw["unit"] == "USD per million tokens" and raw["source"] and raw["date"]
    for provider in ("openai", "anthropic", "google", "mistral-ai", "groq", "together-ai",
                     "fireworks-ai", "deepinfra", "anyscale"):
        assert raw["providers"][provider], provider
    for model in ("meta-llama/Llama-2-70b-chat-hf", "mistralai/Mistral-7B-Instruct-v0.1",
                  "mistralai/Mixtral-8x7B-Instruct-v0.1", "meta-llama/Meta-Llama-3-8B-Instruct",
                  "codellama/CodeLlama-34b-Instruct-hf", "HuggingFaceH4/zephyr-7b-beta",
                  "thenlper/gte-large"):
        assert model in raw["providers"]["anyscale"], model


def test_lookups(book: PriceBook):
    assert book.price("openai", "gpt-4o-2024-08-06") == book.price("openai", "gpt-4o")
    assert book.price("azure-openai", "gpt-4o-mini") == book.price("openai", "gpt-4o-mini")
    assert book.price("bedrock", "anthropic.claude-3-haiku-20240307-v1:0") == book.price(
        "anthropic", "claude-3-haiku")
    assert book.price("openai", "made-up-model") is None
    assert book.price("vllm", "my-llama") == Price(Decimal(0), Decimal(0))  # self-hosted: free
    assert book.price("ollama", "llama3") == Price(Decimal(0), Decimal(0))


def test_cost_is_exact_and_counts_cached_tokens_at_their_price():
    price = Price(Decimal("2.5"), Decimal("10"), Decimal("1.25"))
    # 1,000 prompt tokens of which 400 cached, 200 completion tokens.
    assert price.cost(1000, 200, 400) == Decimal("0.004")  # 600*2.5 + 400*1.25 + 200*10
    assert Price(Decimal("3"), Decimal("15")).cost(1000, 0, 1000) == Decimal("0.003")


def test_operator_and_virtual_key_overrides_win():
    book = PriceBook(load_table(), {"vllm/my-llama": {"input": 0.1, "output": 0.2},
                                    "gpt-4o": {"input": 1, "output": 1}})
    assert book.price("vllm", "my-llama") == Price(Decimal("0.1"), Decimal("0.2"))
    assert book.price("openai", "gpt-4o-2024-08-06") == Price(Decimal("1"), Decimal("1"))
    key_prices = {"*": {"input": 9, "output": 9}}
    assert book.price("openai", "gpt-4o", key_prices) == Price(Decimal("9"), Decimal("9"))


def test_usage_shapes_and_estimates():
    assert from_usage({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                       "prompt_tokens_details": {"cached_tokens": 4}}) == Tokens(10, 5, 4)
    assert from_usage({"completion_tokens": 5}) is None
    assert count("hello world") == 2
    guess = estimate({"messages": [{"role": "user", "content": "hello world"}]}, "hi there")
    assert guess == Tokens(2, 2, 0, estimated=True)


def test_a_name_longer_than_any_model_is_looked_up_as_it_is():
    # Stripping "-v3" 10,000 times rescans the name each time: a client-chosen 30 KB model
    # name once froze the event loop for seconds (quadratic), before any upstream call.
    from gateway.usage.pricing import MAX_MODEL_NAME
    hostile = "gpt-4o" + "-v3" * 10000
    assert base_model(hostile) == hostile
    assert base_model("gpt-4o" + "-v3" * ((MAX_MODEL_NAME - 6) // 3)) == "gpt-4o"
