"""`/v1/responses` to a provider that speaks it (OpenAI; the mock answers its Responses API):
the request goes untranslated, the gateway still keeps the state (`store: false` upstream,
history as input items, the response under a gateway id shown in place of the upstream's),
and chains cross native and translated targets."""

from __future__ import annotations

import httpx
import openai

from gateway.store.responses.ids import minted_at
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.servers import ThreadedServer

ANSWER = "".join(STREAM_WORDS)


def client(gateway: ThreadedServer, provider: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-provider-key", base_url=f"{gateway.url}/v1",
                         default_headers={"x-portkey-provider": provider}, max_retries=0)


def test_native_create_is_untranslated_and_stored_by_the_gateway(gateway: ThreadedServer,
                                                                  mock: MockUpstream):
    sdk = client(gateway, "openai")
    created = sdk.responses.create(model="gpt-x", input="Hello", instructions="Be brief",
                                   metadata={"team": "a"})
    (sent,) = mock.requests
    assert sent.path == "responses"
    assert sent.body == {"model": "gpt-x", "input": "Hello", "instructions": "Be brief",
                         "metadata": {"team": "a"}, "store": False}
    assert sent.headers["authorization"] == "Bearer sk-provider-key"
    assert minted_at(created.id) is not None  # the gateway's id, not the mock's resp_mock_
    assert created.output_text == ANSWER
    stored = sdk.responses.retrieve(created.id)
    assert stored.id == created.id and stored.output[0].id == created.output[0].id
    assert stored.store is True  # what the client asked; OpenAI was told not to keep it
    assert sdk.responses.input_items.list(created.id).data[0].content[0].text == "Hello"
    assert len(mock.requests) == 1


def test_native_stream_passes_through_and_is_stored(gateway: ThreadedServer,
                                                    mock: MockUpstream):
    sdk = client(gateway, "openai")
    with sdk.responses.stream(model="gpt-x", input="Stream it") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert minted_at(final.id) is not None and final.output_text == ANSWER
    shown = {e.response.id for e in events if e.type.startswith("response.")
             and hasattr(e, "response")}
    assert shown == {final.id}  # response.created, .in_progress and .completed: one id
    assert [e.sequence_number for e in events] == list(range(len(events)))  # as sent
    assert mock.requests[0].body["stream"] is True
    assert sdk.responses.retrieve(final.id).output_text == ANSWER


def test_a_chain_crosses_translated_and_native_targets(gateway: ThreadedServer,
                                                       mock: MockUpstream):
    translated, native = client(gateway, "anyscale"), client(gateway, "openai")
    first = translated.responses.create(model="m", input="One")
    second = native.responses.create(model="gpt-x", input="Two",
                                     previous_response_id=first.id)
    third = translated.responses.create(model="m", input="Three",
                                        previous_response_id=second.id)
    assert [r.path for r in mock.requests] == ["chat/completions", "responses",
                                               "chat/completions"]
    to_openai = mock.requests[1].body
    assert "previous_response_id" not in to_openai and to_openai["store"] is False
    assert to_openai["input"] == [
        {"role": "user", "content": [{"type": "input_text", "text": "One"}]},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Two"}]
    assert [(m["role"], m["content"]) for m in mock.requests[2].body["messages"]] == [
        ("user", "One"), ("assistant", ANSWER), ("user", "Two"), ("assistant", ANSWER),
        ("user", "Three")]
    assert native.responses.retrieve(second.id).previous_response_id == first.id
    assert third.output_text == ANSWER


def test_conversation_goes_only_natively(gateway: ThreadedServer, mock: MockUpstream):
    body = {"model": "m", "input": "hi", "conversation": "conv_1"}
    refused = httpx.post(f"{gateway.url}/v1/responses", json=body, headers={
        "x-portkey-provider": "anyscale", "authorization": "Bearer sk"})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "conversation"
    assert not mock.requests
    sdk = client(gateway, "openai")
    created = sdk.responses.create(**body)
    assert mock.requests[0].body["conversation"] == "conv_1"
    assert "store" not in mock.requests[0].body  # OpenAI's own state: left to it
    assert sdk.responses.retrieve(created.id).id == created.id  # the gateway keeps it too
