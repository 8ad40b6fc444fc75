"""The gateway's errors, each rendered once as an OpenAI-style envelope.

    GatewayError
    ├── InvalidRequest          400  invalid_request_error
    │   └── PayloadTooLarge     413
    ├── AuthenticationFailed    401  authentication_error
    ├── PermissionDenied        403  permission_error
    ├── NotFound                404  not_found_error
    ├── RequestTimeout          408  timeout_error
    ├── RateLimited             429  rate_limit_error
    ├── ClientDisconnected      499  client_disconnect (logged only: the client has gone)
    ├── UpstreamUnreachable     502  upstream_error
    ├── UpstreamMalformed       502  upstream_error
    │   └── UpstreamTooLarge    502  an answer, SSE event or frame over the size cap
    ├── ServiceUnavailable      503  service_unavailable (key store down, master key missing)
    └── UpstreamStatus          the upstream's own status, message prefixed with the provider slug
"""

from __future__ import annotations

from typing import Any

from providers.base import ProviderError


class GatewayError(Exception):
    status = 500
    type = "gateway_error"
    code: str | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None,
        provider: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.provider = provider
        self.headers = headers or {}
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = {}

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": {
            "message": self.message, "type": self.type, "param": self.param, "code": self.code,
        }}
        if self.provider:
            body["provider"] = self.provider
        body.update(self.extra)
        return body


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class RequestTimeout(GatewayError):
    status = 408
    type = "timeout_error"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"


class ClientDisconnected(GatewayError):
    """The client left before the answer: its upstream call and retries were cancelled. The
    status is only logged (nginx's "client closed request"); nobody is there to read it."""

    status = 499
    type = "client_disconnect"
    code = "client_disconnect"


class UpstreamUnreachable(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_unreachable"


class UpstreamMalformed(GatewayError):
    status = 502
    type = "upstream_error"
    code = "upstream_malformed"


class UpstreamTooLarge(UpstreamMalformed):
    """An upstream answer, SSE line or event, or frame past GATEWAY_MAX_UPSTREAM_BODY_BYTES."""

    code = "upstream_body_too_large"


class ServiceUnavailable(GatewayError):
    """The gateway cannot serve this now: its database is down, or a master key is missing."""

    status = 503
    type = "service_unavailable"


class UpstreamStatus(GatewayError):
    """A provider's own error, its status passed through."""

    type = "upstream_error"

    def __init__(self, provider: str, error: ProviderError,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{provider} error: {error.message}", param=error.param,
                         provider=provider, headers=headers)
        self.status = error.status
        self.type = error.type or self.type
        self.code = None if error.code is None else str(error.code)


class AdapterError(GatewayError):
    """A provider adapter failed on a request it should have translated: a gateway bug,
    logged with its traceback; never blamed on the client."""

    status = 502
    type = "gateway_error"
    code = "adapter_error"
