"""Provider adapters, keyed by the slug clients send in `x-portkey-provider`."""

from __future__ import annotations

from providers.anthropic import AnthropicAdapter
from providers.azure import AzureOpenAIAdapter
from providers.base import Adapter
from providers.bedrock import BedrockAdapter
from providers.cohere import CohereAdapter
from providers.google import GoogleAdapter
from providers.openai_compat import HOSTS, OpenAICompatAdapter
from providers.vertex import VertexAdapter

REGISTRY: dict[str, Adapter] = {
    **{slug: OpenAICompatAdapter(slug, host) for slug, host in HOSTS.items()},
    "anthropic": AnthropicAdapter(),
    "google": GoogleAdapter(),
    "vertex-ai": VertexAdapter(),
    "azure-openai": AzureOpenAIAdapter(),
    "cohere": CohereAdapter(),
    "bedrock": BedrockAdapter(),
}

__all__ = ["REGISTRY"]
