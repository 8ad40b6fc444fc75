from __future__ import annotations

import orjson
import pytest

from providers.base import ConfigurationError, Endpoint, SSEEvent, StreamError, StreamState, Target
from providers.cohere import PARAMS, CohereAdapter, event_chunks
from providers.table import apply
from tests.providers.replay import response, stream_chunks, tool_calls_of


def test_renamed_sampling_fields_and_listified_stop() -> None:
    body = apply(PARAMS, {"model": "c", "messages": [{"role": "developer", "content": "d"}],
                          "top_p": 0.9, "stop": "x", "tool_choice": "required"})
    assert body == {"model": "c", "messages": [{"role": "system", "content": "d"}], "p": 0.9,
                    "stop_sequences": ["x"], "tool_choice": "REQUIRED"}


def test_named_tool_choice_is_refused_clearly() -> None:
    with pytest.raises(ConfigurationError, match="cannot force one named tool"):
        apply(PARAMS, {"tool_choice": {"type": "function", "function": {"name": "f"}}})


def test_embed_request_defaults_input_type() -> None:
    request = CohereAdapter().build_request(Endpoint.EMBEDDINGS, {"model": "e", "input": "x"},
                                            Target("cohere", api_key="k"), stream=False)
    assert orjson.loads(request.body or b"") == {
        "model": "e", "texts": ["x"], "input_type": "search_document",
        "embedding_types": ["float"]}
    assert request.url == "https://api.cohere.com/v2/embed"


def test_parallel_tool_call_stream() -> None:
    chunks, state = stream_chunks("cohere", "tools")
    calls = tool_calls_of(chunks)
    assert [c["arguments"] for c in calls.values()] == ['{"city":"Paris"}', '{"city":"London"}']
    assert state.finish_reason == "tool_calls"
    assert response("cohere", "tools")["choices"][0]["message"]["content"] is None


def test_finish_reason_error_is_an_error() -> None:
    event = SSEEvent("message-end", '{"type":"message-end","delta":{"finish_reason":"ERROR"}}')
    with pytest.raises(StreamError):
        event_chunks(event, StreamState())
