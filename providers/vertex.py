"""Vertex AI: Gemini models (Google's translation) and Claude models (Anthropic's) on GCP.

Reference: https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference
and .../partner-models/claude. The model name picks the publisher: `claude-*` or
`anthropic.<model>` go to Anthropic, anything else (optionally `google.<model>`) to Gemini.
Auth is a bearer token: the client's Authorization, or one the gateway mints from
`x-portkey-vertex-service-account-json` (`service_account_option`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from providers import anthropic, google
from providers import openai_shapes as shapes
from providers.base import (
    ConfigurationError,
    Endpoint,
    ProviderError,
    SSEEvent,
    StreamFormat,
    StreamState,
    Target,
    UpstreamRequest,
    sse_events,
)
from providers.options import check_value

DEFAULT_REGION = "us-central1"
ANTHROPIC_VERSION = "vertex-2023-10-16"


def publisher_and_model(model: str) -> tuple[str, str]:
    prefix, dot, rest = model.partition(".")
    if dot and prefix in ("anthropic", "google"):
        return prefix, rest
    return ("anthropic" if model.startswith("claude") else "google"), model


def base_url(target: Target, region: str) -> str:
    if target.base_url:
        return target.base_url.rstrip("/")
    host = "aiplatform.googleapis.com" if region == "global" \
        else f"{check_value('vertex-region', region)}-aiplatform.googleapis.com"
    return f"https://{host}"


def project_of(target: Target) -> str:
    project = target.options.get("vertex-project-id")
    account = target.options.get("vertex-service-account-json")
    if not project and account:
        try:
            project = orjson.loads(account).get("project_id")
        except (orjson.JSONDecodeError, AttributeError):
            project = None
    if not project:
        raise ConfigurationError("vertex-ai needs x-portkey-vertex-project-id "
                                 "(or a service-account JSON with project_id)")
    return str(project)


def _method(endpoint: Endpoint, publisher: str, stream: bool) -> str:
    if endpoint is Endpoint.EMBEDDINGS:
        return "predict"
    if publisher == "anthropic":
        return "streamRawPredict" if stream else "rawPredict"
    return "streamGenerateContent?alt=sse" if stream else "generateContent"


def model_path(target: Target, publisher: str, name: str, method: str) -> str:
    region = check_value("vertex-region", target.options.get("vertex-region", DEFAULT_REGION))
    return (f"projects/{quote(project_of(target), safe='')}/locations/{region}/publishers/"
            f"{publisher}/models/{quote(name, safe='@')}:{method}")


def claude_body(body: Mapping[str, Any]) -> dict[str, Any]:
    out = anthropic.messages_body(body)
    out.pop("model", None)  # the model is in the URL
    out["anthropic_version"] = ANTHROPIC_VERSION
    return out


def embed_body(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"instances": [{"content": text}
                                         for text in shapes.embedding_inputs(dict(body))]}
    if body.get("dimensions"):
        out["parameters"] = {"outputDimensionality": body["dimensions"]}
    return out


def embeddings_of(body: dict[str, Any], model: str) -> dict[str, Any]:
    found = [p.get("embeddings") or {} for p in body.get("predictions") or []]
    tokens = sum(shapes.count(e.get("statistics"), "token_count") for e in found)
    return shapes.embeddings([e.get("values", []) for e in found], model=model,
                             prompt_tokens=tokens)


class VertexAdapter:
    slug = "vertex-ai"
    stream_format: StreamFormat = "sse"
    injects_stream_usage = True
    rewrites_responses = True
    header_options: tuple[str, ...] = (
        "vertex-project-id", "vertex-region", "vertex-service-account-json", "anthropic-beta")
    service_account_option: str | None = "vertex-service-account-json"
    # Claude models take Anthropic's Messages body (rawPredict); Gemini models do not.
    native_dialects = frozenset({"messages"})

    def build_request(self, endpoint: Endpoint, body: Mapping[str, Any], target: Target, *,
                      stream: bool) -> UpstreamRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigurationError("'model' is required")
        if endpoint not in (Endpoint.CHAT, Endpoint.EMBEDDINGS):
            raise ConfigurationError(f"vertex-ai does not serve /v1/{endpoint.value}")
        publisher, name = publisher_and_model(model)
        path = model_path(target, publisher, name, _method(endpoint, publisher, stream))
        if endpoint is Endpoint.EMBEDDINGS:
            payload = embed_body(body)
        else:
            payload = claude_body(body) if publisher == "anthropic" else google.gemini_body(body)
        headers = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", self.proxy_url(path, target), headers,
                               orjson.dumps(payload))

    def takes_native(self, dialect: str, path: str, model: str) -> bool:
        # count_tokens has no rawPredict twin here: the gateway estimates it.
        return dialect == "messages" and path == "messages" \
            and publisher_and_model(model)[0] == "anthropic"

    def build_native(self, dialect: str, path: str, body: Mapping[str, Any], target: Target,
                     *, stream: bool, headers: Mapping[str, str]) -> UpstreamRequest:
        """Anthropic's own body to Claude's rawPredict. The client's anthropic-beta is not
        sent (Vertex refuses betas it does not know); x-portkey-anthropic-beta is, and
        x-portkey-forward-headers may list anthropic-beta."""
        model = body.get("model")
        if not isinstance(model, str) or not self.takes_native(dialect, path, model):
            raise ConfigurationError(f"vertex-ai takes '{dialect}' requests for Claude only")
        payload = {k: v for k, v in body.items() if k != "model"}
        payload.setdefault("anthropic_version", ANTHROPIC_VERSION)
        url = self.proxy_url(model_path(target, "anthropic", publisher_and_model(model)[1],
                                        "streamRawPredict" if stream else "rawPredict"), target)
        sent = self.auth_headers(target) | {"content-type": "application/json"}
        return UpstreamRequest("POST", url, sent, orjson.dumps(payload))

    def native_events(self, dialect: str, event: SSEEvent) -> list[dict[str, Any]]:
        return sse_events(event)

    def proxy_url(self, path: str, target: Target) -> str:
        """`path` is below the API's `/v1/` (`projects/...`)."""
        region = target.options.get("vertex-region", DEFAULT_REGION)
        return f"{base_url(target, region)}/v1/{path.lstrip('/')}"

    def auth_headers(self, target: Target) -> dict[str, str]:
        headers = {"authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        if "anthropic-beta" in target.options:
            headers["anthropic-beta"] = target.options["anthropic-beta"]
        return headers

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        if endpoint is Endpoint.EMBEDDINGS:
            return embeddings_of(body, model)
        if body.get("type") == "message":
            return anthropic.completion_of(body, now=now, model=model)
        return google.completion_of(body, now=now, response_id=f"chatcmpl-{request_id}",
                                    model=model)

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        # Claude's events are named (`event: message_start`); Gemini's are bare `data:`.
        if event.event:
            state.extra["claude"] = True
            return anthropic.event_chunks(event, state)
        return google.event_chunks(event, state)

    def end_stream(self, endpoint: Endpoint, state: StreamState) -> list[dict[str, Any]]:
        if state.extra.get("claude"):
            anthropic.check_stream_end(state)
            return []
        return google.stream_end(state)

    def translate_error(self, status: int, body: Any) -> ProviderError:
        if isinstance(body, dict) and body.get("type") == "error":
            return anthropic.error_of(status, body)
        return google.error_of(status, body)
