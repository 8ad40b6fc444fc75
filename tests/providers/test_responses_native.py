"""The Responses API as OpenAI and Azure OpenAI take it natively: where it is sent, and how
their stream events come back (as they are)."""

from __future__ import annotations

import orjson

from providers import REGISTRY
from providers.base import SSEEvent, Target


def test_openai_sends_responses_to_its_own_path():
    adapter = REGISTRY["openai"]
    request = adapter.build_native("responses", "responses", {"model": "gpt-5", "input": "x"},
                                   Target(provider="openai", api_key="sk-1"), stream=True,
                                   headers={"openai-beta": "x"})
    assert request.method == "POST" and request.url == "https://api.openai.com/v1/responses"
    assert request.headers["authorization"] == "Bearer sk-1"
    assert "openai-beta" not in request.headers
    assert orjson.loads(request.body or b"") == {"model": "gpt-5", "input": "x"}
    event = SSEEvent(event="response.created", data='{"type":"response.created"}')
    assert adapter.native_events("responses", event) == [{"type": "response.created"}]
    assert adapter.native_events("responses", SSEEvent(data="[DONE]")) == []
    assert not REGISTRY["anyscale"].takes_native("responses", "responses", "m")


def test_azure_sends_responses_resource_wide():
    adapter = REGISTRY["azure-openai"]

    def url(version: str | None) -> str:
        options = {"azure-resource-name": "contoso"}
        if version:
            options["azure-api-version"] = version
        target = Target(provider="azure-openai", api_key="k", options=options)
        request = adapter.build_native("responses", "responses", {"model": "gpt-5-prod"},
                                       target, stream=False, headers={})
        assert request.headers["api-key"] == "k"
        return request.url

    assert url(None) == "https://contoso.openai.azure.com/openai/v1/responses"
    assert url("v1") == "https://contoso.openai.azure.com/openai/v1/responses"
    assert url("2025-04-01-preview") == (
        "https://contoso.openai.azure.com/openai/responses?api-version=2025-04-01-preview")
