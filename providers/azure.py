"""Azure OpenAI: OpenAI's own wire format at deployment URLs.

Reference: https://learn.microsoft.com/azure/ai-services/openai/reference. Only the URL and
the auth differ from OpenAI: `https://{resource}.openai.azure.com/openai/deployments/
{deployment}/{endpoint}?api-version={version}` (or `/openai/v1/{endpoint}` when the version
is `v1`), with `api-key: <key>` or, for Entra ID, `Authorization: Bearer <token>`.
Options come from `x-portkey-azure-*` headers or a virtual key's options, which may also use
the portkey-ai SDK's names (`resourceName`, `deploymentName`, `apiVersion`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from providers.base import (
    ConfigurationError,
    Endpoint,
    NoNativeDialects,
    ProviderError,
    SSEEvent,
    StreamFormat,
    StreamState,
    Target,
    UpstreamRequest,
)
from providers.openai_compat import HOSTS, RESPONSES_PATH, OpenAICompatAdapter, openai_error
from providers.options import check_value, names_of

DEFAULT_API_VERSION = "2024-10-21"
# Older dated versions reject `stream_options` with a 400.
FIRST_STREAM_OPTIONS_VERSION = "2024-09-01"
# The first dated version with the Responses API; older ones (and "v1") use /openai/v1/.
FIRST_RESPONSES_VERSION = "2025-03-01-preview"

# option -> other names a virtual key may store it under (providers/options.py's table)
ALIASES: dict[str, tuple[str, ...]] = {option: names_of(option) for option in (
    "azure-resource-name", "azure-deployment-id", "azure-api-version", "azure-ad-token",
    "azure-auth-mode")}


def option(target: Target, name: str) -> str | None:
    for key in (name, *ALIASES.get(name, ())):
        value = target.options.get(key)
        if value:
            return value
    return None


def base_url(target: Target) -> str:
    if target.base_url:
        return target.base_url.rstrip("/")
    resource = option(target, "azure-resource-name")
    if not resource:
        raise ConfigurationError("azure-openai needs x-portkey-azure-resource-name "
                                 "(or a custom host)")
    return f"https://{check_value('azure-resource-name', resource)}.openai.azure.com"


def endpoint_url(endpoint_path: str, body: Mapping[str, Any], target: Target) -> str:
    version = option(target, "azure-api-version") or DEFAULT_API_VERSION
    if version == "v1":
        return f"{base_url(target)}/openai/v1/{endpoint_path}"
    # Deployments are often named after their model; fall back to it.
    deployment = option(target, "azure-deployment-id") or body.get("model")
    if not deployment:
        raise ConfigurationError("azure-openai needs x-portkey-azure-deployment-id")
    return (f"{base_url(target)}/openai/deployments/{quote(str(deployment), safe='')}/"
            f"{endpoint_path}?api-version={quote(version, safe='')}")


def responses_url(target: Target) -> str:
    """The Responses API: resource-wide (the body's `model` names the deployment)."""
    version = option(target, "azure-api-version") or DEFAULT_API_VERSION
    if version[:1].isdigit() and version >= FIRST_RESPONSES_VERSION:
        return (f"{base_url(target)}/openai/{RESPONSES_PATH}"
                f"?api-version={quote(version, safe='')}")
    return f"{base_url(target)}/openai/v1/{RESPONSES_PATH}"


class AzureOpenAIAdapter(NoNativeDialects):
    slug = "azure-openai"
    stream_format: StreamFormat = "sse"
    injects_stream_usage = True
    rewrites_responses = False  # already OpenAI's format
    header_options: tuple[str, ...] = tuple(ALIASES)
    service_account_option: str | None = None
    native_dialects = frozenset({"responses"})

    def __init__(self) -> None:
        self._openai = OpenAICompatAdapter("openai", HOSTS["openai"])

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        return dialect in self.native_dialects and path == RESPONSES_PATH

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        if not self.takes_native(dialect, path, ""):
            raise ConfigurationError(f"azure-openai does not take '{dialect}' requests for "
                                     f"{path}")
        sent = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", responses_url(target), sent, orjson.dumps(body))

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        return self._openai.native_events(dialect, event)

    def build_request(self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *,
                      stream: bool) -> UpstreamRequest:
        if endpoint is Endpoint.MODELS:
            raise ConfigurationError("azure-openai lists models per resource in its portal; "
                                     "/v1/models is not served")
        version = option(target, "azure-api-version") or DEFAULT_API_VERSION
        if version[:1].isdigit() and version < FIRST_STREAM_OPTIONS_VERSION:
            body = {k: v for k, v in body.items() if k != "stream_options"}
        headers = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", endpoint_url(endpoint.value, body, target), headers,
                               orjson.dumps(body))

    def proxy_url(self, path: str, target: Target) -> str:
        return f"{base_url(target)}/openai/{path.lstrip('/')}"

    def auth_headers(self, target: Target) -> dict[str, str]:
        token = option(target, "azure-ad-token")
        if token:
            return {"authorization": f"Bearer {token.removeprefix('Bearer ')}"}
        if not target.api_key:
            return {}
        if option(target, "azure-auth-mode") == "entra":
            return {"authorization": f"Bearer {target.api_key}"}
        return {"api-key": target.api_key}

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        return body

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        # Azure opens with a `choices: []` chunk of prompt_filter_results; it passes through.
        return self._openai.translate_event(endpoint, event, state)

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        return self._openai.end_stream(endpoint, state)

    def translate_error(self, status: int, body: Any) -> ProviderError:
        return openai_error(status, body)
