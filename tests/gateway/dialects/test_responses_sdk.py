"""`/v1/responses` through the openai SDK's `client.responses`, against a real gateway and the
loopback mock (an OpenAI-compatible, chat-only upstream): create, stream, retrieve, delete,
input_items, previous_response_id chains, tool calls, ownership and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.support.databases import database_url, keyed_gateway, master_key  # noqa: F401
from tests.support.keys import create_api_key
from tests.support.mock_upstream import STREAM_WORDS, TOOL_CALL, MockUpstream
from tests.support.servers import ThreadedServer

ANSWER = "".join(STREAM_WORDS)
CHAT_ONLY = "anyscale"  # an OpenAI-compatible provider with no Responses API of its own


def client(gateway: ThreadedServer, provider_key: str = "sk-provider-key",
           **headers: str) -> openai.OpenAI:
    sent = {"x-portkey-provider": CHAT_ONLY} | {f"x-portkey-{k.replace('_', '-')}": v
                                                 for k, v in headers.items()}
    return openai.OpenAI(api_key=provider_key, base_url=f"{gateway.url}/v1",
                         default_headers=sent, max_retries=0)


def user_turns(body: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in body["messages"]]


def test_create_retrieve_input_items_and_delete(gateway: ThreadedServer, mock: MockUpstream):
    sdk = client(gateway)
    raw = sdk.responses.with_raw_response.create(
        model="mistral-7b", instructions="Be terse.", max_output_tokens=64,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
               {"role": "user", "content": "And again"}])
    created = raw.parse()
    assert raw.headers["x-portkey-provider"] == CHAT_ONLY
    assert created.id.startswith("resp_") and created.status == "completed"
    assert created.output_text == ANSWER
    assert created.output[0].id.startswith("msg_")
    assert created.usage is not None and created.usage.output_tokens == len(STREAM_WORDS)
    (sent,) = mock.requests
    assert sent.path == "chat/completions"
    assert sent.body == {"model": "mistral-7b", "max_completion_tokens": 64, "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hello"},
        {"role": "user", "content": "And again"}]}

    retrieved = sdk.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()
    items = sdk.responses.input_items.list(created.id)
    assert [i.content[0].text for i in items.data] == ["And again", "Hello"]  # newest first
    ids = [i.id for i in items.data]
    assert all(i.startswith("msg_") for i in ids) and not items.has_more
    page = sdk.responses.input_items.list(created.id, order="asc", limit=1)
    assert [i.id for i in page.data] == ids[::-1][:1] and page.has_more
    after = sdk.responses.input_items.list(created.id, order="asc", after=page.data[0].id)
    assert [i.id for i in after.data] == ids[:1] and not after.has_more

    sdk.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(created.id)
    assert len(mock.requests) == 1  # retrieve, input_items and delete never go upstream


def test_stream_ids_are_the_ids_stored_and_chained_from(gateway: ThreadedServer,
                                                        mock: MockUpstream):
    sdk = client(gateway)
    with sdk.responses.stream(model="m", input="Stream please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created"
    assert events[0].response.id == final.id
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == ANSWER
    # Retrievable at once (written before response.completed went out), same ids throughout.
    stored = sdk.responses.retrieve(final.id)
    assert stored.id == final.id and stored.output[0].id == final.output[0].id
    assert sdk.responses.input_items.list(final.id).data[0].content[0].text == "Stream please"
    assert mock.requests[0].body["stream"] is True


def test_three_turns_chained_to_a_chat_only_target(gateway: ThreadedServer,
                                                   mock: MockUpstream):
    sdk = client(gateway)
    first = sdk.responses.create(model="m", input="My name is Ada.", instructions="Turn one")
    streamed = sdk.responses.create(model="m", input="What is 2+2?", stream=True,
                                    previous_response_id=first.id)
    second_id = next(e.response.id for e in streamed if e.type == "response.completed")
    third = sdk.responses.create(model="m", input="What is my name?", instructions="Turn three",
                                 previous_response_id=second_id)
    assert third.previous_response_id == second_id
    assert len(mock.requests) == 3
    # The third upstream request carried the whole conversation; only its own instructions.
    assert user_turns(mock.requests[2].body) == [
        ("system", "Turn three"),
        ("user", "My name is Ada."), ("assistant", ANSWER),
        ("user", "What is 2+2?"), ("assistant", ANSWER),
        ("user", "What is my name?")]
    assert sdk.responses.retrieve(third.id).output_text == ANSWER


def test_store_false_and_unknown_previous_ids(gateway: ThreadedServer, mock: MockUpstream):
    sdk = client(gateway)
    unstored = sdk.responses.create(model="m", input="Forget me", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unstored.id)
    for unknown in (unstored.id, "resp_does_not_exist"):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.responses.create(model="m", input="x", previous_response_id=unknown)
        error = caught.value.body
        assert isinstance(error, dict) and error["param"] == "previous_response_id"
        assert error["code"] == "previous_response_not_found"
    assert len(mock.requests) == 1


def test_bad_input_is_a_400_naming_the_field_before_any_upstream_call(
        gateway: ThreadedServer, mock: MockUpstream):
    answer = httpx.post(f"{gateway.url}/v1/responses", headers={
        "x-portkey-provider": CHAT_ONLY, "authorization": "Bearer sk"},
        json={"model": "m", "input": [{"type": "message", "role": "user", "content": [
            {"type": "input_image", "file_id": "file_1"}]}]})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "input[0].content[0].image_url"
    sdk = client(gateway)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="m", input="x", conversation="conv_1")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "conversation"
    limit = httpx.get(f"{gateway.url}/v1/responses/resp_x/input_items?limit=500")
    assert limit.status_code == 400 and limit.json()["error"]["param"] == "limit"
    assert not mock.requests


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_tool_call_round_trip(gateway: ThreadedServer, mock: MockUpstream, mock_url: str,
                                stream: bool):
    sdk = client(gateway, custom_host=f"{mock_url}/s/tool-once/v1")
    tools: Any = [{"type": "function", "name": TOOL_CALL[0], "description": "Weather",
                   "parameters": {"type": "object", "properties": {
                       "city": {"type": "string"}, "unit": {"type": "string"}}}}]
    if stream:
        with sdk.responses.stream(model="m", input="Weather in Paris?", tools=tools) as events:
            asked = events.get_final_response()
    else:
        asked = sdk.responses.create(model="m", input="Weather in Paris?", tools=tools)
    (call,) = asked.output
    assert call.type == "function_call" and call.id is not None and call.id.startswith("fc_")
    assert call.call_id == "call_mock" and call.name == TOOL_CALL[0]
    assert call.arguments == "".join(TOOL_CALL[1])
    answered = sdk.responses.create(
        model="m", tools=tools, previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C"}])
    assert answered.output_text == ANSWER
    assert user_turns(mock.requests[1].body)[1:] == [("assistant", None), ("tool", "18C")]
    assert mock.requests[1].body["messages"][1]["tool_calls"][0]["id"] == "call_mock"
    assert mock.requests[0].body["tools"][0]["function"]["name"] == TOOL_CALL[0]


def test_a_chained_turn_looks_its_caller_up_once(keyed_gateway,  # noqa: F811
                                                 mock: MockUpstream):
    """The caller authenticated to own the chain is the one the pipeline resolves with."""
    gateway = keyed_gateway()
    key = create_api_key(gateway)
    resolver = gateway.config.app.state.services.resolver
    looked_up: list[str | None] = []
    authenticate = resolver.authenticate

    async def counted(api_key: str | None) -> Any:
        looked_up.append(api_key)
        return await authenticate(api_key)

    resolver.authenticate = counted
    sdk = client(gateway, api_key=key)
    first = sdk.responses.create(model="m", input="one")
    assert looked_up == [key]
    second = sdk.responses.create(model="m", input="two", previous_response_id=first.id)
    assert looked_up == [key, key]
    with sdk.responses.stream(model="m", input="three",
                              previous_response_id=second.id) as stream:
        assert stream.get_final_response().output_text == ANSWER
    assert looked_up == [key] * 3
    assert user_turns(mock.requests[-1].body) == [
        ("user", "one"), ("assistant", ANSWER), ("user", "two"), ("assistant", ANSWER),
        ("user", "three")]
    # A bad key is still refused, by that one lookup.
    with pytest.raises(openai.AuthenticationError):
        client(gateway, api_key="pk-wrong").responses.create(
            model="m", input="x", previous_response_id=second.id)
    assert looked_up == [key] * 3 + ["pk-wrong"]
    assert len(mock.requests) == 3


def test_responses_belong_to_the_key_that_made_them(keyed_gateway,  # noqa: F811
                                                     mock: MockUpstream):
    gateway = keyed_gateway()
    # Anonymous (no key exists yet): scoped to the provider credential.
    anonymous = client(gateway, provider_key="sk-one").responses.create(model="m", input="a")
    with pytest.raises(openai.NotFoundError):
        client(gateway, provider_key="sk-two").responses.retrieve(anonymous.id)
    key_a, key_b = create_api_key(gateway), create_api_key(gateway)
    sdk_a, sdk_b = client(gateway, api_key=key_a), client(gateway, api_key=key_b)
    made = sdk_a.responses.create(model="m", input="mine")
    assert sdk_a.responses.retrieve(made.id).id == made.id
    for foreign in (made.id, anonymous.id):
        with pytest.raises(openai.NotFoundError):
            sdk_b.responses.retrieve(foreign)
        with pytest.raises(openai.NotFoundError):
            sdk_b.responses.input_items.list(foreign)
        with pytest.raises(openai.NotFoundError):
            sdk_b.responses.delete(foreign)
        with pytest.raises(openai.BadRequestError) as caught:
            sdk_b.responses.create(model="m", input="x", previous_response_id=foreign)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        sdk_a.responses.retrieve(anonymous.id)  # keyed callers do not see anonymous ones
    assert sdk_a.responses.retrieve(made.id).id == made.id  # still there for its owner
