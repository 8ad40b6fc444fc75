"""GATEWAY_MODEL_PRICES: operators price their own (backend) models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import ModelPrice, Settings


def test_prices_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY_MODEL_PRICES", '{"vllm/meta-llama/Llama-3.1-8B-Instruct": '
                       '{"input": 0.05, "output": 0.1, "cached_input": 0.01}}')
    settings = Settings(_env_file=None)
    assert settings.model_price("vllm", "meta-llama/Llama-3.1-8B-Instruct") == ModelPrice(
        input=0.05, output=0.1, cached_input=0.01)
    assert settings.model_price("vllm", "other") is None
    assert Settings(_env_file=None, model_prices={}).model_price("vllm", "x") is None


@pytest.mark.parametrize("bad", [
    '{"vllm/m": {"input": -1, "output": 0}}', '{"vllm/m": {"input": 1}}',
    '{"vllm/m": {"input": 1, "output": 1, "typo": 2}}', '[1, 2]',
])
def test_bad_prices_are_refused_at_startup(monkeypatch: pytest.MonkeyPatch, bad: str):
    monkeypatch.setenv("GATEWAY_MODEL_PRICES", bad)
    with pytest.raises(ValidationError, match="model_prices"):
        Settings(_env_file=None)
