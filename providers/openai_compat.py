"""One adapter for every provider that already speaks OpenAI's API.

They differ only by base URL and auth, so each is a row of `HOSTS`. Bodies pass through
unchanged: unknown fields (vLLM's `top_k`, `min_p`, `repetition_penalty`, `best_of`, ...)
reach the upstream as the client sent them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from providers import openai_shapes as shapes
from providers.base import (
    ConfigurationError,
    Endpoint,
    NoNativeDialects,
    ProviderError,
    SSEEvent,
    StreamCutOff,
    StreamError,
    StreamFormat,
    StreamState,
    Target,
    UpstreamRequest,
    sse_events,
)
from providers.options import check_value

# The path (below the base URL) of OpenAI's Responses API, the one native dialect here.
RESPONSES_PATH = "responses"


@dataclass(frozen=True, slots=True)
class Host:
    base_url: str | None  # None: the target must bring a custom host
    # `{name}` placeholders in base_url are filled from Target.options.
    auth_header: str = "authorization"
    auth_prefix: str = "Bearer "
    header_options: tuple[str, ...] = ()
    # Client dialects the host serves itself (sent untranslated): OpenAI's Responses API.
    native_dialects: frozenset[str] = frozenset()


HOSTS: dict[str, Host] = {
    "openai": Host("https://api.openai.com/v1",
                   header_options=("openai-organization", "openai-project"),
                   native_dialects=frozenset({"responses"})),
    "anyscale": Host("https://api.endpoints.anyscale.com/v1"),
    "together-ai": Host("https://api.together.xyz/v1"),
    "groq": Host("https://api.groq.com/openai/v1"),
    "fireworks-ai": Host("https://api.fireworks.ai/inference/v1"),
    "deepinfra": Host("https://api.deepinfra.com/v1/openai"),
    "perplexity-ai": Host("https://api.perplexity.ai"),
    "openrouter": Host("https://openrouter.ai/api/v1"),
    "mistral-ai": Host("https://api.mistral.ai/v1"),
    "deepseek": Host("https://api.deepseek.com/v1"),
    "x-ai": Host("https://api.x.ai/v1"),
    "ollama": Host(None),
    "runpod": Host("https://api.runpod.ai/v2/{runpod-endpoint-id}/openai/v1",
                   header_options=("runpod-endpoint-id",)),
    # The gateway fills the bundled backend's URL in from its settings.
    "vllm": Host(None),
}

# Extra request headers some hosts take from `x-portkey-<option>`.
_OPTION_HEADERS = {
    "openai-organization": "OpenAI-Organization",
    "openai-project": "OpenAI-Project",
}

_TRANSLATED_ENDPOINTS = (Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.EMBEDDINGS, Endpoint.MODELS)


class OpenAICompatAdapter(NoNativeDialects):
    stream_format: StreamFormat = "sse"
    injects_stream_usage = True
    rewrites_responses = False
    service_account_option: str | None = None

    def __init__(self, slug: str, host: Host) -> None:
        self.slug = slug
        self.host = host
        self.header_options = host.header_options
        self.native_dialects = host.native_dialects

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        return dialect in self.native_dialects and path == RESPONSES_PATH

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        if not self.takes_native(dialect, path, ""):
            raise ConfigurationError(f"provider '{self.slug}' does not take '{dialect}' "
                                     f"requests for {path}")
        sent = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", f"{self.base_url(target)}/{path}", sent,
                               orjson.dumps(body))

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        return [] if event.data == "[DONE]" else sse_events(event)

    def base_url(self, target: Target) -> str:
        base = target.base_url or self.host.base_url
        if base is None:
            raise ConfigurationError(
                f"provider '{self.slug}' needs a custom host (x-portkey-custom-host)")
        if "{" in base:
            try:
                base = base.format_map(_URLOptions(target.options))
            except KeyError as missing:
                raise ConfigurationError(
                    f"provider '{self.slug}' needs x-portkey-{missing.args[0]} "
                    "or a custom host") from None
        return base.rstrip("/")

    def auth_headers(self, target: Target) -> dict[str, str]:
        headers = {
            header: target.options[option]
            for option, header in _OPTION_HEADERS.items()
            if option in target.options
        }
        if target.api_key:
            headers[self.host.auth_header] = self.host.auth_prefix + target.api_key
        return headers

    def build_request(
        self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *, stream: bool
    ) -> UpstreamRequest:
        assert endpoint in _TRANSLATED_ENDPOINTS
        url = f"{self.base_url(target)}/{endpoint.value}"
        headers = self.auth_headers(target)
        if endpoint is Endpoint.MODELS:
            return UpstreamRequest("GET", url, headers)
        headers["content-type"] = "application/json"
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def proxy_url(self, path: str, target: Target) -> str:
        return f"{self.base_url(target)}/{path.lstrip('/')}"

    def translate_response(
        self, endpoint: Endpoint, body: dict[str, Any], *, now: int, request_id: str = "",
        model: str = "",
    ) -> dict[str, Any]:
        return body

    def translate_event(
        self, endpoint: Endpoint, event: SSEEvent, state: StreamState
    ) -> list[dict[str, Any]]:
        if event.data == "[DONE]":
            state.completed = True
            return []
        if not event.data:
            return []
        chunk = orjson.loads(event.data)
        if not isinstance(chunk, dict):
            raise ValueError("a stream event is not a JSON object")
        if chunk.get("error"):
            raise StreamError(self.translate_error(500, chunk))
        if isinstance(chunk.get("usage"), dict):  # null on every chunk but the last
            # A copy, merged: a later usage's explicit null keeps an earlier count.
            state.usage = shapes.merge_counts(dict(state.usage or {}), chunk["usage"]) or None
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
        return [chunk]

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        # `[DONE]` ends OpenAI's streams; some compatible servers stop after the finish_reason.
        if not (state.completed or state.finish_reason):
            raise StreamCutOff
        return []

    def translate_error(self, status: int, body: Any) -> ProviderError:
        return openai_error(status, body)


class _URLOptions(dict[str, str]):
    """Options as `format_map` reads them: each placeholder value checked against its pattern
    (providers/options.py), so it cannot move the request to another host or path."""

    def __getitem__(self, name: str) -> str:
        return check_value(name, super().__getitem__(name))


def openai_error(status: int, body: Any) -> ProviderError:
    """Read OpenAI's envelope and the shapes vLLM and others use beside it."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or orjson.dumps(error).decode()
            code = error.get("code")
            return ProviderError(status, str(message), _str_or_none(error.get("type")),
                                 _str_or_none(error.get("param")),
                                 code if isinstance(code, int | str) else None)
        if isinstance(error, str):
            return ProviderError(status, error)
    if isinstance(body, str | bytes):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return ProviderError(status, text.strip()[:1000] or f"HTTP {status}")
    return ProviderError(status, orjson.dumps(body).decode()[:1000])


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
