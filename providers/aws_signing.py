"""SigV4 request signing by botocore, with the clock passed in instead of read.

botocore's `SigV4Auth.add_auth` reads the current time itself; `_ClockedSigV4Auth` runs the
same steps (botocore's canonical request, string to sign and HMAC chain) at a given time, so
signatures are reproducible in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class _ClockedSigV4Auth(SigV4Auth):
    def __init__(self, credentials: Credentials, service: str, region: str,
                 now: datetime) -> None:
        super().__init__(credentials, service, region)
        self._now = now

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._now.strftime(SIGV4_TIMESTAMP)
        # botocore-stubs leave out SigV4Auth's private steps, which botocore's own add_auth runs.
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)  # type: ignore[attr-defined]


def sign(method: str, url: str, headers: dict[str, str], body: bytes, *,
         keys: tuple[str, str, str | None], region: str, service: str,
         now: float) -> dict[str, str]:
    """`headers` plus Authorization, X-Amz-Date and, with a session token, X-Amz-Security-Token."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    key_id, secret, token = keys
    moment = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    _ClockedSigV4Auth(Credentials(key_id, secret, token), service, region, moment).add_auth(request)
    return {name.lower(): str(value) for name, value in request.headers.items()}
