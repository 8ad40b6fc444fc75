"""Provider options stored on a virtual key reach the adapters like x-portkey-* headers do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.contracts.identity import Principal, VirtualKey
from gateway.errors import NotFound
from tests.support.fixture_upstream import FixtureUpstream, Reply
from tests.support.servers import ThreadedServer

FIXTURES = Path(__file__).parents[1] / "fixtures"
KEYS = {
    "azure-vk": VirtualKey("1", "azure-vk", "azure-openai", "azure-secret", options={
        "resourceName": "contoso", "deploymentName": "chat-prod", "apiVersion": "2024-10-21"}),
    "bedrock-vk": VirtualKey("2", "bedrock-vk", "bedrock", "bedrock-secret", options={
        "aws-access-key-id": "AKIAVK", "aws-region": "ap-southeast-2"}),
}


class StubResolver:
    async def authenticate(self, api_key: str | None) -> Principal | None:
        return Principal("p1", "tests", frozenset({"inference"})) if api_key else None

    async def virtual_key(self, slug: str) -> VirtualKey:
        if slug not in KEYS:
            raise NotFound(f"no virtual key '{slug}'")
        return KEYS[slug]

    async def saved_config(self, config_id: str) -> Mapping[str, Any]:
        raise NotFound(config_id)


@pytest.fixture
def setup(start_gateway: Callable[..., ThreadedServer]) -> Iterator[tuple[str, FixtureUpstream]]:
    fake = FixtureUpstream()
    with ThreadedServer(fake.app()) as upstream:
        gateway = start_gateway(provider_base_urls={
            "azure-openai": f"{upstream.url}/azure", "bedrock": f"{upstream.url}/bedrock"})
        app_state = gateway.config.app.state
        app_state.services = dataclasses.replace(app_state.services, resolver=StubResolver())
        yield gateway.url, fake


def sdk(url: str, virtual_key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused", base_url=f"{url}/v1", max_retries=0, default_headers={
        "x-portkey-api-key": "gw-key", "x-portkey-virtual-key": virtual_key})


def test_azure_fields_on_a_virtual_key(setup: tuple[str, FixtureUpstream]) -> None:
    url, fake = setup
    fake.reply = Reply((FIXTURES / "azure-openai" / "text" / "response.json").read_bytes())
    sdk(url, "azure-vk").chat.completions.create(model="gpt-4o", messages=[
        {"role": "user", "content": "hi"}])
    (seen,) = fake.requests
    assert seen.path == "/azure/openai/deployments/chat-prod/chat/completions"
    assert seen.query == "api-version=2024-10-21"
    assert seen.headers["api-key"] == "azure-secret"


def test_bedrock_keys_on_a_virtual_key(setup: tuple[str, FixtureUpstream]) -> None:
    url, fake = setup
    fake.reply = Reply((FIXTURES / "bedrock" / "text" / "response.json").read_bytes())
    answer = sdk(url, "bedrock-vk").chat.completions.create(model="amazon.nova-pro-v1:0",
                                                           messages=[{"role": "user",
                                                                      "content": "hi"}])
    assert answer.choices[0].message.content == "Paris."
    (seen,) = fake.requests
    assert "Credential=AKIAVK/" in seen.headers["authorization"]
    assert "/ap-southeast-2/bedrock/aws4_request" in seen.headers["authorization"]
    assert "bedrock-secret" not in str(seen.headers)
