"""Every parameter in the seeds' tables leaves the gateway for `vllm` exactly as sent.

The recording mock upstream shows the body the backend receives; test_through_gateway shows
the real vLLM reading each of them.
"""

from __future__ import annotations

import httpx
import pytest
from portkey_ai import createHeaders

from tests.support.mock_upstream import MockUpstream

# The RunPod vLLM worker's tables (shared/seeds): OpenAI's parameters and vLLM's own.
SEED_PARAMETERS = {
    "temperature": 0.7, "top_p": 0.9, "n": 2, "max_tokens": 16, "seed": 42, "stop": ["\n\n"],
    "presence_penalty": 0.1, "frequency_penalty": 0.2, "best_of": 3, "top_k": 20,
    "min_p": 0.05, "repetition_penalty": 1.1, "length_penalty": 0.9, "use_beam_search": False,
    "ignore_eos": True, "stop_token_ids": [2, 7], "skip_special_tokens": False,
    "spaces_between_special_tokens": False, "include_stop_str_in_output": True,
}
CHAT_ONLY = {"add_generation_prompt": True}
COMPLETIONS_ONLY = {"echo": True, "logprobs": 3, "suffix": None}


@pytest.mark.parametrize(("path", "body"), [
    ("chat/completions", {"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                          **SEED_PARAMETERS, **CHAT_ONLY}),
    ("completions", {"model": "m", "prompt": "Hi", **SEED_PARAMETERS, **COMPLETIONS_ONLY}),
])
def test_seed_parameters_reach_the_backend_unchanged(start_gateway, mock: MockUpstream,
                                                     path: str, body: dict):
    gateway = start_gateway(vllm_api_key="sk-backend")
    response = httpx.post(f"{gateway.url}/v1/{path}", json=body,
                          headers=createHeaders(provider="vllm"))
    assert response.status_code == 200, response.text
    (seen,) = mock.requests
    assert seen.path == path
    assert seen.body == body
    assert seen.headers["authorization"] == "Bearer sk-backend"
