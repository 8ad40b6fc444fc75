from __future__ import annotations

import orjson
import pytest

from providers.azure import AzureOpenAIAdapter
from providers.base import ConfigurationError, Endpoint, Target

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}


def test_deployment_url_with_api_version() -> None:
    target = Target("azure-openai", api_key="k", options={
        "azure-resource-name": "contoso", "azure-deployment-id": "prod",
        "azure-api-version": "2025-01-01-preview"})
    request = AzureOpenAIAdapter().build_request(Endpoint.EMBEDDINGS, BODY, target, stream=False)
    assert request.url == ("https://contoso.openai.azure.com/openai/deployments/prod/embeddings"
                           "?api-version=2025-01-01-preview")
    assert request.headers["api-key"] == "k"


def test_virtual_key_option_names_from_the_portkey_sdk() -> None:
    target = Target("azure-openai", api_key="k", options={
        "resourceName": "fabrikam", "deploymentName": "dep", "apiVersion": "v1"})
    request = AzureOpenAIAdapter().build_request(Endpoint.CHAT, BODY, target, stream=False)
    assert request.url == "https://fabrikam.openai.azure.com/openai/v1/chat/completions"


def test_entra_bearer_from_auth_mode() -> None:
    target = Target("azure-openai", api_key="entra-token", options={
        "azure-resource-name": "r", "azure-auth-mode": "entra"})
    headers = AzureOpenAIAdapter().auth_headers(target)
    assert headers == {"authorization": "Bearer entra-token"}


def test_missing_resource_names_the_header() -> None:
    with pytest.raises(ConfigurationError, match="x-portkey-azure-resource-name"):
        AzureOpenAIAdapter().build_request(Endpoint.CHAT, BODY, Target("azure-openai"),
                                           stream=False)


@pytest.mark.parametrize(("version", "kept"), [
    ("2024-06-01", False), ("2024-09-01-preview", True), ("2024-10-21", True), ("v1", True)])
def test_stream_options_only_for_versions_that_accept_them(version: str, kept: bool) -> None:
    target = Target("azure-openai", options={"azure-resource-name": "r",
                                             "azure-api-version": version})
    body = BODY | {"stream": True, "stream_options": {"include_usage": True}}
    request = AzureOpenAIAdapter().build_request(Endpoint.CHAT, body, target, stream=True)
    assert ("stream_options" in orjson.loads(request.body or b"")) is kept
