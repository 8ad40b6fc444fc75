"""Claude Code's `max_tokens: 32000` to the bundled backend (real vLLM on CPU, tiny model,
MAX_MODEL_LEN 512) through the anthropic SDK: vLLM refuses a request for more than its
max_model_len, and an operator row in GATEWAY_MODEL_OUTPUT_LIMITS (the backend's
MAX_MODEL_LEN) clamps it so that it is served (docs/dialects.md, "Output limits")."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import pytest

from tests.support.backend_process import BackendProcess
from tests.support.servers import ThreadedServer

TURN: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Say hello"}]


def client(gateway: ThreadedServer) -> anthropic.Anthropic:
    # A timeout of its own: the SDK refuses a non-streamed 32000 under its default one.
    return anthropic.Anthropic(api_key="unused", base_url=gateway.url, max_retries=0,
                               timeout=120, default_headers={"x-portkey-provider": "vllm"})


def test_max_tokens_past_max_model_len_needs_the_operators_row(
        start_gateway: Callable[..., ThreadedServer], vllm_backend: BackendProcess) -> None:
    wiring = {"vllm_url": f"{vllm_backend.url}/v1", "vllm_api_key": vllm_backend.api_key,
              "provider_base_urls": {}}
    unknown = client(start_gateway(**wiring))
    with pytest.raises(anthropic.BadRequestError, match="max_model_len"):
        unknown.messages.create(model=vllm_backend.model, max_tokens=32000, messages=TURN)

    limits = {f"vllm/{vllm_backend.model}": 512}
    known = client(start_gateway(**wiring, model_output_limits=limits))
    message = known.messages.create(model=vllm_backend.model, max_tokens=32000, messages=TURN)
    assert message.usage.output_tokens > 0
    assert message.usage.input_tokens + message.usage.output_tokens <= 512
