"""AES-256-GCM for provider secrets at rest, under a master key from the environment.

Each ciphertext is stored beside the id of the master key that sealed it (the first 8 hex
digits of the key's SHA-256), so that after `GATEWAY_MASTER_KEY` changes the previous keys,
listed in `GATEWAY_PREVIOUS_MASTER_KEYS`, still open old rows until `keys rotate-master`
has re-sealed them under the new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.errors import ServiceUnavailable
from gateway.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_NO_MASTER_KEY = ("the gateway has no master key, so it cannot store provider secrets: set "
                  "GATEWAY_MASTER_KEY to the base64 of 32 random bytes "
                  "(python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')")


class MasterKeyError(ValueError):
    """A master key setting that is not base64 of 32 bytes."""


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    ciphertext: str


def parse_master_key(encoded: str, name: str = "GATEWAY_MASTER_KEY") -> bytes:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{name} is not valid base64") from None
    if len(raw) != 32:
        raise MasterKeyError(f"{name} must decode to 32 bytes for AES-256, got {len(raw)}")
    return raw


def key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:8]


class SecretBox:
    """Seals with the current master key; opens with the current or any previous one."""

    def __init__(self, current: bytes | None, previous: tuple[bytes, ...] = ()) -> None:
        self.current_id = key_id(current) if current else None
        self._raw = {key_id(k): k for k in previous}
        if current:
            self._raw[key_id(current)] = current
        self._ciphers: dict[str, AESGCM] = {}

    def _cipher(self, kid: str) -> AESGCM | None:
        """The AES-GCM cipher for a master key id; cryptography loads on first use (a gateway
        that never opens a virtual key does not carry it)."""
        if kid not in self._ciphers and kid in self._raw:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._ciphers[kid] = AESGCM(self._raw[kid])
        return self._ciphers.get(kid)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        current = settings.master_key.get_secret_value() if settings.master_key else ""
        previous = settings.previous_master_keys.get_secret_value() \
            if settings.previous_master_keys else ""
        return cls(
            parse_master_key(current) if current.strip() else None,
            tuple(parse_master_key(p, "GATEWAY_PREVIOUS_MASTER_KEYS")
                  for p in previous.split(",") if p.strip()),
        )

    @property
    def can_seal(self) -> bool:
        return self.current_id is not None

    def ensure_can_seal(self) -> None:
        if self.current_id is None:
            raise ServiceUnavailable(_NO_MASTER_KEY, code="master_key_missing")

    def seal(self, plaintext: str) -> Sealed:
        self.ensure_can_seal()
        assert self.current_id is not None
        nonce = os.urandom(_NONCE_BYTES)
        cipher = self._cipher(self.current_id)
        assert cipher is not None
        data = cipher.encrypt(nonce, plaintext.encode(), None)
        return Sealed(self.current_id, base64.b64encode(nonce + data).decode())

    def open(self, sealed: Sealed, what: str) -> str:
        """The plaintext; `what` names the row in the error, never the secret."""
        aead = self._cipher(sealed.key_id)
        if aead is None:
            raise ServiceUnavailable(
                f"{what} was encrypted with master key id {sealed.key_id}, which this gateway "
                "does not hold: set GATEWAY_MASTER_KEY or add the old key to "
                "GATEWAY_PREVIOUS_MASTER_KEYS", code="master_key_unknown")
        from cryptography.exceptions import InvalidTag

        raw = base64.b64decode(sealed.ciphertext)
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode()
        except InvalidTag:
            raise ServiceUnavailable(f"{what} could not be decrypted: its ciphertext does not "
                                      f"match master key id {sealed.key_id}",
                                      code="secret_corrupt") from None
