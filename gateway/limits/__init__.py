"""Rate, token, concurrency and budget limits per API key and virtual key."""

from gateway.limits.limiter import Limiter, admit

__all__ = ["Limiter", "admit"]
