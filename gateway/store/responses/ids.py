"""Response ids and owners.

A gateway id starts with the time it was minted: ids made together sort together, so the
primary key's index grows at its end. Every stored response has one, a native target's
answer included (its upstream id is replaced: dialects/responses.py), so no upstream can make
two responses share an id.
"""

from __future__ import annotations

import hashlib
import time

from gateway.randomness import random_bytes

_ID_LENGTH = 53  # "resp_", 12 hex digits of milliseconds, 36 random hex digits


def mint_response_id(now: float | None = None) -> str:
    """`resp_`, the minting time (12 hex digits of milliseconds) and 36 random hex digits."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"resp_{millis:012x}{random_bytes(18).hex()}"  # the system's generator


def minted_at(response_id: str) -> float | None:
    """When a gateway id was minted (seconds), None for any other id."""
    if not response_id.startswith("resp_") or len(response_id) != _ID_LENGTH:
        return None
    try:
        return int(response_id[5:17], 16) / 1000
    except ValueError:
        return None


def owner_of(api_key_id: str | None, provider_key: str | None) -> str:
    """Who a response belongs to: a gateway API key, or an anonymous caller's credential."""
    if api_key_id is not None:
        return f"key:{api_key_id}"
    return "anon:" + hashlib.sha256((provider_key or "").encode()).hexdigest()[:32]
