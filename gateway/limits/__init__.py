"""Rate, token, concurrency and budget limits per API key and virtual key."""

from gateway.limits.limiter import Limiter, api_key_scope, virtual_key_scope

__all__ = ["Limiter", "api_key_scope", "virtual_key_scope"]
