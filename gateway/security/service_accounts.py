"""OAuth access tokens minted from a Google service-account JSON (for Vertex AI), cached
until shortly before they expire.

The JWT-bearer grant (RFC 7523): an RS256-signed assertion POSTed to the account's
`token_uri`. The token URI comes from client-supplied JSON, so it passes the same SSRF
guard as a custom host before the gateway connects to it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field

import httpx
import orjson

from gateway.errors import AuthenticationFailed, InvalidRequest
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import map_httpx_errors, read_body
from gateway.security.redaction import redact

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Refresh this long before the token's own expiry.
EARLY_REFRESH_S = 300
# Past this many cached accounts, expired tokens are dropped.
_PRUNE_AT = 256
# A token answer is a few hundred bytes; reading stops (502) past this.
_MAX_TOKEN_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    client_email: str
    private_key: str
    token_uri: str
    private_key_id: str = ""

    @classmethod
    def parse(cls, text: str, param: str) -> ServiceAccount:
        """`param` names the header the JSON came in, for the 400 when it is unusable."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidRequest("the service-account JSON is not valid JSON",
                                 param=param) from None
        if not isinstance(data, dict):
            raise InvalidRequest("the service-account JSON must be an object", param=param)
        missing = [k for k in ("client_email", "private_key") if not isinstance(data.get(k), str)]
        if missing:
            raise InvalidRequest("the service-account JSON lacks " + ", ".join(missing),
                                 param=param)
        return cls(data["client_email"], data["private_key"],
                   str(data.get("token_uri") or "https://oauth2.googleapis.com/token"),
                   str(data.get("private_key_id") or ""))


def assertion(account: ServiceAccount, now: int, param: str) -> str:
    """The signed JWT that asks `token_uri` for a cloud-platform token."""
    header = {"alg": "RS256", "typ": "JWT"} | (
        {"kid": account.private_key_id} if account.private_key_id else {})
    claims = {"iss": account.client_email, "scope": SCOPE, "aud": account.token_uri,
              "iat": now, "exp": now + 3600}
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}".encode()
    # cryptography loads only for Vertex service accounts (several MB otherwise unused).
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    except ValueError:
        raise InvalidRequest("the service-account private_key is not a PEM private key",
                             param=param) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidRequest("the service-account private_key must be an RSA key", param=param)
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(slots=True)
class ServiceAccountTokens:
    """Tokens by account; held on `Services`, one per app."""

    _cache: dict[str, tuple[str, float]] = field(default_factory=dict)

    async def bearer(self, account_json: str, *, option: str, provider: str,
                     http: httpx.AsyncClient, guard: HostGuard) -> str:
        """A bearer token for the account in `Target.options[option]` of `provider`."""
        param = f"x-portkey-{option}"
        account = ServiceAccount.parse(account_json, param)
        key = _cache_key(account)
        cached = self._cache.get(key)
        now = time.time()
        if cached and cached[1] > now:
            return cached[0]
        try:
            token_uri = await guard.check(account.token_uri)
        except InvalidRequest as exc:  # named by the account's field, not the custom host
            raise InvalidRequest(f"{param}: token_uri: {exc.message}", param=param,
                                 code=exc.code) from None
        signed = assertion(account, int(now), param)
        with map_httpx_errors(provider):
            request = http.build_request("POST", token_uri, data={
                "grant_type": GRANT_TYPE, "assertion": signed})
            response = await http.send(request, stream=True)
        raw = await read_body(response, _MAX_TOKEN_ANSWER_BYTES, provider)
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = {}
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            reason = answer.get("error_description") or answer.get("error") \
                if isinstance(answer, dict) else None
            # The assertion is a credential for an hour: an echo of it is cut here, where
            # it is known (the attempt's redaction knows the private key, not the assertion).
            reason = redact(str(reason), (signed, account.private_key)) if reason else None
            raise AuthenticationFailed(
                f"{provider}: the service account's token request failed "
                f"(HTTP {response.status_code}{': ' + reason if reason else ''})",
                param=param, provider=provider)
        lifetime = float(answer.get("expires_in") or 3600)
        if len(self._cache) >= _PRUNE_AT:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
        self._cache[key] = (token, now + max(lifetime - EARLY_REFRESH_S, 0))
        return token

    def minted(self, account_json: str) -> str | None:
        """The cached token of the account in `account_json`, if any (for redaction)."""
        try:
            account = ServiceAccount.parse(account_json, "")
        except InvalidRequest:
            return None
        cached = self._cache.get(_cache_key(account))
        return cached[0] if cached else None


def _cache_key(account: ServiceAccount) -> str:
    # Keyed by the private key too: knowing an account's email must not fetch its token.
    return hashlib.sha256(f"{account.client_email}\n{account.token_uri}\n"
                          f"{account.private_key}".encode()).hexdigest()
