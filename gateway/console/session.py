"""Console sessions: a signed, expiring cookie naming who logged in, with its CSRF token.

The cookie holds no secret: `admin` (the admin token was shown) or `api_key:<id>` (an
admin-scope API key was shown; its row is re-checked on every page, so revoking the key or
dropping its admin scope ends the session). The signature is HMAC-SHA256 under a server key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from gateway.settings import Settings

COOKIE = "gw_console"
LOGIN_COOKIE = "gw_console_login"  # a nonce binding the login form's CSRF token to a browser


@dataclass(frozen=True, slots=True)
class Session:
    subject: str  # "admin" or "api_key:<id>"
    label: str  # shown in the page header
    csrf: str
    expires: float


def session_key(settings: Settings) -> bytes:
    """The signing key: set explicitly, else derived from the admin token (so sessions survive
    restarts and work across workers), else random for this process."""
    if settings.console_secret is not None:
        return hashlib.sha256(settings.console_secret.get_secret_value().encode()).digest()
    if settings.admin_token is not None:
        return hmac.new(settings.admin_token.get_secret_value().encode(),
                        b"gateway-console-session", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, key: bytes, lifetime_s: float) -> None:
        self._key = key
        self.lifetime_s = lifetime_s

    def _mac(self, purpose: str, data: bytes) -> str:
        return _b64(hmac.new(self._key, purpose.encode() + b"\0" + data, hashlib.sha256).digest())

    def issue(self, subject: str, label: str, now: float) -> str:
        payload = orjson.dumps({"sub": subject, "label": label, "csrf": secrets.token_urlsafe(24),
                                "exp": now + self.lifetime_s})
        return f"{_b64(payload)}.{self._mac('session', payload)}"

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session the cookie carries; None when missing, forged, malformed or expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, mac = cookie.partition(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = orjson.loads(payload)
            session = Session(str(data["sub"]), str(data["label"]), str(data["csrf"]),
                              float(data["exp"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return session if session.expires > now else None

    def login_token(self, nonce: str) -> str:
        """The login form's CSRF token, valid only with the nonce cookie it was made for."""
        return self._mac("login", nonce.encode())

    def check_login_token(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce and token) and hmac.compare_digest(
            str(token), self.login_token(str(nonce)))


def csrf_ok(session: Session, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(token.encode(), session.csrf.encode())
