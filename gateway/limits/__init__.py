"""Rate, token, concurrency and budget limits per API key and virtual key."""

from gateway.limits.limiter import Limiter, admit, admit_virtual_key

__all__ = ["Limiter", "admit", "admit_virtual_key"]
