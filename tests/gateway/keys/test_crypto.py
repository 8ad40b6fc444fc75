"""AES-256-GCM sealing of provider secrets."""

from __future__ import annotations

import base64
import os

import pytest

from gateway.errors import ServiceUnavailable
from gateway.store.crypto import MasterKeyError, Sealed, SecretBox, key_id, parse_master_key


def test_seal_open_round_trip_with_fresh_nonces():
    raw = os.urandom(32)
    box = SecretBox(raw)
    first, second = box.seal("sk-secret"), box.seal("sk-secret")
    assert first.key_id == second.key_id == key_id(raw)
    assert first.ciphertext != second.ciphertext and "sk-secret" not in first.ciphertext
    assert box.open(first, "vk") == "sk-secret"


def test_previous_keys_open_old_secrets_only():
    old, new = os.urandom(32), os.urandom(32)
    sealed = SecretBox(old).seal("sk-old")
    assert SecretBox(new, previous=(old,)).open(sealed, "vk") == "sk-old"
    with pytest.raises(ServiceUnavailable, match="GATEWAY_PREVIOUS_MASTER_KEYS"):
        SecretBox(new).open(sealed, "virtual key 'x'")


def test_tampered_ciphertext_is_refused():
    box = SecretBox(os.urandom(32))
    sealed = box.seal("sk-secret")
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[-1] ^= 1
    with pytest.raises(ServiceUnavailable, match="could not be decrypted"):
        box.open(Sealed(sealed.key_id, base64.b64encode(raw).decode()), "vk")


def test_no_master_key_and_malformed_keys():
    with pytest.raises(ServiceUnavailable, match="GATEWAY_MASTER_KEY"):
        SecretBox(None).seal("sk")
    with pytest.raises(MasterKeyError, match="not valid base64"):
        parse_master_key("%%%")
    with pytest.raises(MasterKeyError, match="32 bytes"):
        parse_master_key(base64.b64encode(b"short").decode())
