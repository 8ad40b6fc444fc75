"""A gateway whose translating providers all point at one loopback `FixtureUpstream`."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from gateway.app import create_app
from tests.conftest import gateway_settings
from tests.support.fixture_upstream import FixtureUpstream
from tests.support.servers import ThreadedServer

SLUGS = ("anthropic", "google", "vertex-ai", "azure-openai", "cohere", "bedrock")
# Provider options every request of a slug carries (as x-portkey-<name> headers).
OPTIONS: dict[str, dict[str, str]] = {
    "vertex-ai": {"vertex-project-id": "my-project", "vertex-region": "us-east5"},
    "azure-openai": {"azure-resource-name": "contoso", "azure-deployment-id": "gpt-4o-prod",
                     "azure-api-version": "2024-10-21"},
    "bedrock": {"aws-access-key-id": "AKIAIOSFODNN7EXAMPLE", "aws-region": "us-west-2",
                "aws-secret-access-key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FixtureUpstream, ThreadedServer]]:
    fake = FixtureUpstream()
    with ThreadedServer(fake.app()) as server:
        yield fake, server


@pytest.fixture(scope="module")
def gateway_url(upstream: tuple[FixtureUpstream, ThreadedServer],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _, server = upstream
    settings = gateway_settings(tmp_path_factory.mktemp("gateway"), server.url,
                                provider_base_urls={s: f"{server.url}/{s}" for s in SLUGS})
    with ThreadedServer(create_app(settings)) as gateway:
        yield gateway.url


@pytest.fixture
def fake(upstream: tuple[FixtureUpstream, ThreadedServer]) -> FixtureUpstream:
    upstream[0].reset()
    return upstream[0]


def client(gateway_url: str, slug: str, extra: dict[str, str] | None = None,
           *, options: bool = True, api_key: str = "sk-provider-key") -> openai.OpenAI:
    chosen = (OPTIONS.get(slug, {}) if options else {}) | (extra or {})
    headers = {"x-portkey-provider": slug} | {f"x-portkey-{k}": v for k, v in chosen.items()}
    return openai.OpenAI(api_key=api_key, base_url=f"{gateway_url}/v1",
                         default_headers=headers, max_retries=0)
