"""`GET /v1/responses/{id}?stream=true` replays a stored response as its Responses event
stream (`starting_after` honoured), and `POST /v1/responses/{id}/cancel` answers as OpenAI
does for a response not running in the background: through the openai SDK and plain HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.gateway.dialects.test_responses_sdk import ANSWER, CHAT_ONLY, client
from tests.support.mock_upstream import TOOL_CALL, MockUpstream
from tests.support.servers import ThreadedServer

HEADERS = {"x-portkey-provider": CHAT_ONLY, "authorization": "Bearer sk-provider-key"}
TOOLS: Any = [{"type": "function", "name": TOOL_CALL[0], "parameters": {"type": "object"}}]


def collapsed(types: list[str]) -> list[str]:
    """Event types with each run of one delta type as one (a replay sends one delta)."""
    return [t for i, t in enumerate(types) if not (t.endswith(".delta") and types[i - 1] == t)]


def sse(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event line, data) of each event of an SSE body."""
    events = []
    for block in body.decode().split("\n\n"):
        if block:
            event, data = block.split("\n")
            assert event.startswith("event: ") and data.startswith("data: ")
            events.append((event[7:], orjson.loads(data[6:])))
    return events


def test_a_replay_is_the_live_stream_with_one_delta_per_part(gateway: ThreadedServer,
                                                             mock: MockUpstream):
    sdk = client(gateway)
    live = list(sdk.responses.create(model="m", input="Stream please", stream=True))
    final = live[-1].response
    replayed = list(sdk.responses.retrieve(final.id, stream=True))
    assert [e.sequence_number for e in replayed] == list(range(len(replayed)))
    assert [e.type for e in replayed] == collapsed([e.type for e in live])
    assert [e.delta for e in replayed if e.type == "response.output_text.delta"] == [ANSWER]
    assert replayed[0].response.id == final.id and replayed[0].response.status == "in_progress"
    assert replayed[2].item.id == final.output[0].id  # the stored ids, not new ones
    assert replayed[-1].response.model_dump() == final.model_dump()

    resumed = list(sdk.responses.retrieve(final.id, stream=True, starting_after=3))
    assert [e.model_dump() for e in resumed] == [e.model_dump() for e in replayed[4:]]
    assert len(mock.requests) == 1  # replays never go upstream


@pytest.mark.parametrize("scenario", ["tool-calls", "reasoning"])
def test_the_sdk_stream_helper_accumulates_a_replay(gateway: ThreadedServer, mock_url: str,
                                                    scenario: str):
    sdk = client(gateway, custom_host=f"{mock_url}/s/{scenario}/v1")
    with sdk.responses.stream(model="m", input="Weather in Paris?", tools=TOOLS) as live:
        made = live.get_final_response()
    assert made.output[0].type == ("function_call" if scenario == "tool-calls" else "reasoning")
    with sdk.responses.stream(response_id=made.id) as replay:
        events = list(replay)
        again = replay.get_final_response()
    assert again.model_dump() == made.model_dump()
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    with sdk.responses.stream(response_id=made.id, starting_after=2) as replay:
        assert [e.sequence_number for e in replay] == list(range(3, len(events)))


def test_a_replay_over_plain_http(gateway: ThreadedServer, mock: MockUpstream):
    made = httpx.post(f"{gateway.url}/v1/responses", headers=HEADERS,
                      json={"model": "m", "input": "Hello"}).json()
    url = f"{gateway.url}/v1/responses/{made['id']}"
    replay = httpx.get(f"{url}?stream=true", headers=HEADERS)
    assert replay.status_code == 200
    assert replay.headers["content-type"].startswith("text/event-stream")
    events = sse(replay.content)
    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[-1] == ("response.completed", {"type": "response.completed",
                                                 "sequence_number": len(events) - 1,
                                                 "response": made})
    tail = httpx.get(url, params={"stream": "true", "starting_after": len(events) - 2},
                     headers=HEADERS)
    assert sse(tail.content) == events[-1:]
    past = httpx.get(url, params={"stream": "true", "starting_after": 999}, headers=HEADERS)
    assert past.status_code == 200 and past.content == b""
    assert httpx.get(f"{url}?stream=false", headers=HEADERS).json() == made

    for query, param in (("stream=maybe", "stream"), ("stream=true&starting_after=-1",
                                                      "starting_after"),
                         ("stream=true&starting_after=two", "starting_after")):
        bad = httpx.get(f"{url}?{query}", headers=HEADERS)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param
    foreign = HEADERS | {"authorization": "Bearer sk-someone-else"}
    for response_id, headers in ((made["id"], foreign), ("resp_unknown", HEADERS)):
        missing = httpx.get(f"{gateway.url}/v1/responses/{response_id}?stream=true",
                            headers=headers)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "response_not_found"
    assert len(mock.requests) == 1


def test_cancel_is_a_400_naming_the_problem_and_a_404_for_others(gateway: ThreadedServer,
                                                                mock: MockUpstream):
    sdk = client(gateway)
    made = sdk.responses.create(model="m", input="Quick")
    background = sdk.responses.create(model="m", input="Later", background=True)
    assert background.status == "completed"  # run in the foreground
    for response in (made, background):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.responses.cancel(response.id)
        error = caught.value.body
        assert isinstance(error, dict) and error["type"] == "invalid_request_error"
        assert error["code"] == "response_not_cancellable"
        assert "background=true" in error["message"] and "foreground" in error["message"]
    plain = httpx.post(f"{gateway.url}/v1/responses/{made.id}/cancel", headers=HEADERS)
    assert plain.status_code == 400
    assert set(plain.json()["error"]) >= {"message", "type", "param", "code"}
    assert sdk.responses.retrieve(made.id).status == "completed"  # unchanged

    with pytest.raises(openai.NotFoundError):
        sdk.responses.cancel("resp_unknown")
    with pytest.raises(openai.NotFoundError):
        client(gateway, provider_key="sk-someone-else").responses.cancel(made.id)
    assert len(mock.requests) == 2


NATIVE = {  # a Response as OpenAI makes it (stored under its own id from a native target)
    "id": "resp_native", "object": "response", "created_at": 1, "status": "incomplete",
    "model": "gpt-x", "error": None, "incomplete_details": {"reason": "max_output_tokens"},
    "instructions": None, "metadata": {}, "parallel_tool_calls": True, "temperature": None,
    "top_p": None, "tool_choice": "auto", "tools": [], "store": True, "output": [
        {"type": "reasoning", "id": "rs_1", "encrypted_content": "opaque", "summary": [
            {"type": "summary_text", "text": "Thought it over."}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed",
         "action": {"type": "search", "query": "weather"}},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "incomplete",
         "content": [{"type": "output_text", "text": "Partly", "annotations": []},
                     {"type": "refusal", "refusal": "No more."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
         "arguments": '{"a": 1}', "status": "completed"}],
    "usage": {"input_tokens": 3,
              "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
              "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 1},
              "total_tokens": 7}}


def test_every_item_kind_replays_as_sdk_events_that_rebuild_it():
    from openai.lib.streaming.responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    from gateway.pipeline.dialects.responses_replay import replay

    events = [data for _, data in sse(replay(NATIVE))]
    parse = TypeAdapter(ResponseStreamEvent).validate_python
    state = ResponseStreamState(text_format=openai.omit, input_tools=openai.omit)
    for event in events:
        state.handle_event(parse(event))  # raises on an unknown event or a broken sequence
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.content_part.added", "response.refusal.delta", "response.refusal.done",
        "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.incomplete"]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == NATIVE["output"]
    assert events[-1]["response"] == NATIVE
    assert events[0]["response"]["output"] == [] and events[0]["response"]["usage"] is None
