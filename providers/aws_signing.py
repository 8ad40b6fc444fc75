"""SigV4 request signing by botocore, with the clock passed in instead of read.

botocore's `SigV4Auth.add_auth` reads the current time itself; `sign` runs the same steps
(botocore's canonical request, string to sign and HMAC chain) at a given time, so signatures
are reproducible in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(method: str, url: str, headers: dict[str, str], body: bytes, *,
         keys: tuple[str, str, str | None], region: str, service: str,
         now: float) -> dict[str, str]:
    """`headers` plus Authorization, X-Amz-Date and, with a session token, X-Amz-Security-Token.

    The steps of botocore's `SigV4Auth.add_auth` for a request without a Date header, through
    its public methods, at the time `now` instead of the time it would read."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    key_id, secret, token = keys
    signer = SigV4Auth(Credentials(key_id, secret, token), service, region)
    timestamp = datetime.fromtimestamp(now, UTC).strftime(SIGV4_TIMESTAMP)
    request.context["timestamp"] = timestamp  # read by scope() and string_to_sign()
    del request.headers["Authorization"], request.headers["X-Amz-Date"]  # no error if absent
    request.headers["X-Amz-Date"] = timestamp
    if token:
        del request.headers["X-Amz-Security-Token"]
        request.headers["X-Amz-Security-Token"] = token
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request)
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
                                        f"SignedHeaders={signed_headers}, Signature={signature}")
    return {name.lower(): str(value) for name, value in request.headers.items()}
