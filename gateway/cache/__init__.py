"""The simple response cache: keys, stores (Redis or in process), stream replay."""

from gateway.cache.cached import cached_attempt
from gateway.cache.stores import ResponseCache

__all__ = ["ResponseCache", "cached_attempt"]
