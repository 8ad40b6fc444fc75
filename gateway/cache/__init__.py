"""The simple response cache: keys, stores (Redis or in process), stream replay."""

from gateway.cache.stores import ResponseCache

__all__ = ["ResponseCache"]
