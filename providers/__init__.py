"""Provider adapters, keyed by the slug clients send in `x-portkey-provider`."""

from __future__ import annotations

from providers.base import Adapter
from providers.openai_compat import HOSTS, OpenAICompatAdapter

REGISTRY: dict[str, Adapter] = {
    slug: OpenAICompatAdapter(slug, host) for slug, host in HOSTS.items()
}

__all__ = ["REGISTRY"]
