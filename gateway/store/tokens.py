"""Gateway API keys: random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "pgw-"
_RANDOM_BYTES = 32  # 256 bits; the key is the only secret, so no salt is needed
DISPLAY_CHARS = 12


def new_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_CHARS]


def matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key against a stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)


def masked(prefix: str, last4: str) -> str:
    return f"{prefix}...{last4}"
