"""Each OpenAI-compatible provider's URL and auth, checked with respx (no network)."""

from __future__ import annotations

import httpx
import orjson
import pytest
import respx

from providers import REGISTRY
from providers.base import ConfigurationError, Endpoint, Target
from providers.openai_compat import HOSTS

BASES = {
    "openai": "https://api.openai.com/v1",
    "anyscale": "https://api.endpoints.anyscale.com/v1",
    "together-ai": "https://api.together.xyz/v1",
    "groq": "https://api.groq.com/openai/v1",
    "fireworks-ai": "https://api.fireworks.ai/inference/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "perplexity-ai": "https://api.perplexity.ai",
    "openrouter": "https://openrouter.ai/api/v1",
    "mistral-ai": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "x-ai": "https://api.x.ai/v1",
}


def test_every_compatible_host_is_covered():
    assert set(BASES) | {"ollama", "runpod", "vllm"} == set(HOSTS)


@pytest.mark.parametrize("slug", sorted(BASES))
@pytest.mark.parametrize("endpoint", [Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS])
async def test_url_auth_and_body(slug, endpoint):
    body = {"model": "m", "top_k": 4, "repetition_penalty": 1.1}
    request = REGISTRY[slug].build_request(endpoint, body, Target(slug, "key-1"), stream=False)
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"{BASES[slug]}/{endpoint.value}").respond(200, json={})
        async with httpx.AsyncClient() as client:
            await client.request(request.method, request.url, headers=request.headers,
                                 content=request.body)
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer key-1"
    assert orjson.loads(sent.content) == body


def test_models_is_a_get():
    request = REGISTRY["groq"].build_request(Endpoint.MODELS, {}, Target("groq", "k"),
                                             stream=False)
    assert (request.method, request.url, request.body) == (
        "GET", "https://api.groq.com/openai/v1/models", None)


def test_runpod_endpoint_from_option_or_custom_host():
    adapter = REGISTRY["runpod"]
    target = Target("runpod", "rp", options={"runpod-endpoint-id": "abc123"})
    url = adapter.build_request(Endpoint.CHAT, {}, target, stream=False).url
    assert url == "https://api.runpod.ai/v2/abc123/openai/v1/chat/completions"
    hosted = Target("runpod", "rp", base_url="https://api.runpod.ai/v2/xyz/openai/v1")
    assert adapter.build_request(Endpoint.CHAT, {}, hosted, stream=False).url.startswith(
        "https://api.runpod.ai/v2/xyz/")
    with pytest.raises(ConfigurationError, match="runpod-endpoint-id"):
        adapter.build_request(Endpoint.CHAT, {}, Target("runpod", "rp"), stream=False)


@pytest.mark.parametrize("slug", ["ollama", "vllm"])
def test_self_hosted_need_a_base_url_and_may_have_no_key(slug):
    adapter = REGISTRY[slug]
    with pytest.raises(ConfigurationError, match="custom host"):
        adapter.build_request(Endpoint.CHAT, {}, Target(slug), stream=False)
    request = adapter.build_request(Endpoint.CHAT, {}, Target(slug, None, "http://h:1/v1/"),
                                    stream=False)
    assert request.url == "http://h:1/v1/chat/completions"
    assert "authorization" not in request.headers


def test_openai_organization_and_project_headers():
    target = Target("openai", "k", options={"openai-organization": "org-1",
                                            "openai-project": "proj-1"})
    headers = REGISTRY["openai"].build_request(Endpoint.CHAT, {}, target, stream=False).headers
    assert headers["OpenAI-Organization"] == "org-1" and headers["OpenAI-Project"] == "proj-1"


def test_proxy_url_keeps_the_path():
    url = REGISTRY["openai"].proxy_url("files/abc/content", Target("openai"))
    assert url == "https://api.openai.com/v1/files/abc/content"


@pytest.mark.parametrize(("body", "message", "code"), [
    ({"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}},
     "bad key", "invalid_api_key"),
    ({"object": "error", "message": "model not found", "type": "NotFoundError", "code": 404},
     "model not found", 404),
    ({"detail": "Not Found"}, "Not Found", None),
    ("<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>", None),
])
def test_error_shapes(body, message, code):
    error = REGISTRY["vllm"].translate_error(418, body)
    assert (error.status, error.message, error.code) == (418, message, code)
