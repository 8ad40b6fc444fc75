from __future__ import annotations

import json

import orjson
import pytest

from providers.base import ConfigurationError, Endpoint, SSEEvent, StreamState, Target
from providers.vertex import VertexAdapter, publisher_and_model

BODY = {"model": "claude-sonnet-4-5@20250929", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(("model", "expected"), [
    ("claude-sonnet-4-5@20250929", ("anthropic", "claude-sonnet-4-5@20250929")),
    ("anthropic.claude-3-haiku", ("anthropic", "claude-3-haiku")),
    ("google.gemini-2.5-pro", ("google", "gemini-2.5-pro")),
    ("gemini-2.5-flash", ("google", "gemini-2.5-flash"))])
def test_publisher_from_model(model: str, expected: tuple[str, str]) -> None:
    assert publisher_and_model(model) == expected


def test_claude_on_vertex_url_and_body() -> None:
    target = Target("vertex-ai", api_key="tok", options={"vertex-project-id": "p",
                                                         "vertex-region": "global"})
    request = VertexAdapter().build_request(Endpoint.CHAT, BODY, target, stream=True)
    assert request.url == ("https://aiplatform.googleapis.com/v1/projects/p/locations/global/"
                           "publishers/anthropic/models/claude-sonnet-4-5@20250929"
                           ":streamRawPredict")
    body = orjson.loads(request.body or b"")
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    assert request.headers["authorization"] == "Bearer tok"


def test_project_from_service_account_json() -> None:
    account = json.dumps({"project_id": "from-sa", "client_email": "x"})
    target = Target("vertex-ai", options={"vertex-service-account-json": account})
    request = VertexAdapter().build_request(Endpoint.CHAT, BODY | {"model": "gemini-2.5-flash"},
                                            target, stream=False)
    assert request.url.startswith("https://us-central1-aiplatform.googleapis.com/v1/projects/"
                                  "from-sa/locations/us-central1/publishers/google/")


def test_no_project_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="vertex-project-id"):
        VertexAdapter().build_request(Endpoint.CHAT, BODY, Target("vertex-ai"), stream=False)


def test_events_routed_by_shape() -> None:
    adapter, state = VertexAdapter(), StreamState()
    adapter.translate_event(Endpoint.CHAT, SSEEvent("message_start", json.dumps(
        {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}})),
        state)
    assert state.response_id == "msg_1" and state.extra["claude"]
    gemini = StreamState()
    chunks = adapter.translate_event(Endpoint.CHAT, SSEEvent(data=json.dumps(
        {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]})), gemini)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "hi"}
