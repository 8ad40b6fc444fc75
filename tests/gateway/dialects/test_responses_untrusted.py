"""Stored Responses made by a native upstream are kept as it sent them, so the gateway treats
them as untrusted: odd output items replay (`GET ?stream=true`) and chain without a 500, and
an upstream's ids never decide what is stored: each stored response gets a gateway id, shown
to the client in place of the upstream's (one upstream id given twice, a cached answer given
to another key, an id too long for the table)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.store.responses.ids import minted_at
from tests.support.databases import database_url, keyed_gateway, master_key  # noqa: F401
from tests.support.keys import create_api_key
from tests.support.mock_upstream import STREAM_WORDS, MockUpstream
from tests.support.servers import ThreadedServer

# Output items no well-behaved upstream sends, but a native one may, and the store keeps.
ODD_OUTPUT: list[Any] = [
    1, "x", None,
    {"type": "message", "id": "msg_str", "role": "assistant", "content": "notalist"},
    {"type": "reasoning", "id": "rs_odd", "summary": [{"type": "summary_text", "text": None}, 7],
     "content": None},
    {"type": "message", "id": "msg_mixed", "role": "assistant",
     "content": [5, "y", {"type": "output_text", "text": "kept", "annotations": []}]},
    {"type": "function_call", "id": "fc_odd", "name": 3, "arguments": {"not": "a string"}},
]


def odd_response(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Response object, odd in the way `kind` names; its text echoes the input, so two
    answers under one upstream id can be told apart."""
    said = body.get("input")
    response: dict[str, Any] = {
        "id": "resp_fixed", "object": "response", "created_at": 1, "status": "completed",
        "model": body.get("model"), "output": [
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": f"echo {said}", "annotations": []}]}],
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}
    if kind == "odd-output":
        response["output"] = ODD_OUTPUT
    elif kind == "long-id":
        response["id"] = "resp_" + "a" * 90
    elif kind.startswith("status-"):
        response["status"] = kind.removeprefix("status-")
    return response


@pytest.fixture(scope="module")
def odd_upstream() -> Iterator[str]:
    async def responses(request: Request) -> JSONResponse:
        body = orjson.loads(await request.body())
        return JSONResponse(odd_response(request.path_params["kind"], body))

    app = Starlette(routes=[Route("/odd/{kind}/v1/responses", responses, methods=["POST"])])
    with ThreadedServer(app) as server:
        yield server.url


def native(odd_upstream: str, kind: str, provider_key: str = "sk-odd") -> dict[str, str]:
    return {"x-portkey-provider": "openai", "authorization": f"Bearer {provider_key}",
            "x-portkey-custom-host": f"{odd_upstream}/odd/{kind}/v1"}


def create(gateway: ThreadedServer, headers: dict[str, str], text: str,
           previous: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"model": "gpt-x", "input": text}
    if previous is not None:
        body["previous_response_id"] = previous
    return httpx.post(f"{gateway.url}/v1/responses", json=body, headers=headers, timeout=30)


def replayed(gateway: ThreadedServer, response_id: str,
             headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = httpx.get(f"{gateway.url}/v1/responses/{response_id}?stream=true",
                       headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return [orjson.loads(line[6:]) for line in answer.text.split("\n")
            if line.startswith("data: ")]


def test_odd_output_items_replay_and_chain_without_a_500(gateway: ThreadedServer,
                                                         odd_upstream: str, mock: MockUpstream):
    headers = native(odd_upstream, "odd-output")
    made = create(gateway, headers, "hi")
    assert made.status_code == 200, made.text
    response_id = made.json()["id"]
    kept = httpx.get(f"{gateway.url}/v1/responses/{response_id}", headers=headers)
    assert kept.status_code == 200 and kept.json()["output"] == ODD_OUTPUT  # verbatim

    events = replayed(gateway, response_id, headers)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["id"]) for e in added] == [
        (0, "msg_str"), (1, "rs_odd"), (2, "msg_mixed"), (3, "fc_odd")]  # objects only
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["kept"]
    assert all(isinstance(e["delta"], str) for e in events if e["type"].endswith(".delta"))
    assert events[-1]["type"] == "response.completed"

    # Chained, translated: the history keeps what makes sense of the odd items.
    chained = create(gateway, {"x-portkey-provider": "anyscale", "authorization": "Bearer sk-odd"},
                     "next", previous=response_id)
    assert chained.status_code == 200, chained.text
    assert [(m["role"], m["content"]) for m in mock.requests[-1].body["messages"]] == [
        ("user", "hi"), ("assistant", "notalistkept"), ("user", "next")]
    # Chained, natively: the same history as OpenAI's input items.
    again = create(gateway, native(odd_upstream, "plain"), "and again", previous=response_id)
    assert again.status_code == 200, again.text


@pytest.mark.parametrize(("status", "last"), [
    ("cancelled", "response.incomplete"), ("in_progress", "response.incomplete"),
    ("incomplete", "response.incomplete"), ("failed", "response.failed")])
def test_a_replay_ends_as_the_stored_status_says(gateway: ThreadedServer, odd_upstream: str,
                                                 status: str, last: str):
    headers = native(odd_upstream, f"status-{status}")
    made = create(gateway, headers, "hi")
    assert made.status_code == 200, made.text
    events = replayed(gateway, made.json()["id"], headers)
    assert events[-1]["type"] == last and events[-1]["response"]["status"] == status


def test_one_upstream_id_given_twice_is_two_stored_responses(gateway: ThreadedServer,
                                                             odd_upstream: str):
    """The upstream answers `resp_fixed` every time: each caller still gets a response of
    its own, which it alone retrieves and chains from."""
    one, two = native(odd_upstream, "plain", "sk-one"), native(odd_upstream, "plain", "sk-two")
    made = [create(gateway, one, "first"), create(gateway, two, "second"),
            create(gateway, one, "third")]
    assert all(answer.status_code == 200 for answer in made)
    ids = [answer.json()["id"] for answer in made]
    assert len(set(ids)) == 3 and all(minted_at(each) is not None for each in ids)
    for response_id, owner, text in zip(ids, (one, two, one), ("first", "second", "third"),
                                        strict=True):
        got = httpx.get(f"{gateway.url}/v1/responses/{response_id}", headers=owner)
        assert got.status_code == 200, got.text
        assert got.json()["output"][0]["content"][0]["text"] == f"echo {text}"
    assert httpx.get(f"{gateway.url}/v1/responses/{ids[0]}", headers=two).status_code == 404
    assert create(gateway, two, "on", previous=ids[1]).status_code == 200


def test_an_upstream_id_too_long_for_the_table_is_not_the_id_stored(gateway: ThreadedServer,
                                                                    odd_upstream: str):
    headers = native(odd_upstream, "long-id")
    made = create(gateway, headers, "hi")
    assert made.status_code == 200, made.text
    response_id = made.json()["id"]
    assert len(response_id) <= 64
    assert httpx.get(f"{gateway.url}/v1/responses/{response_id}",
                     headers=headers).status_code == 200


def test_a_cached_native_answer_given_to_another_key_is_stored_for_it(
        keyed_gateway, mock: MockUpstream):  # noqa: F811
    gateway = keyed_gateway()
    config = json.dumps({"provider": "openai", "cache": {"mode": "simple"}})
    callers = [{"x-portkey-api-key": create_api_key(gateway), "x-portkey-config": config,
                "authorization": "Bearer sk-shared"} for _ in range(2)]
    made = [httpx.post(f"{gateway.url}/v1/responses", headers=headers, timeout=30,
                       json={"model": "gpt-x", "input": "cache me"}) for headers in callers]
    assert [answer.headers["x-portkey-cache-status"] for answer in made] == ["MISS", "HIT"]
    assert len(mock.requests) == 1
    first, second = (answer.json()["id"] for answer in made)
    assert first != second
    for response_id, headers in ((first, callers[0]), (second, callers[1])):
        got = httpx.get(f"{gateway.url}/v1/responses/{response_id}", headers=headers)
        assert got.status_code == 200, got.text
        assert got.json()["output"][0]["content"][0]["text"] == "".join(STREAM_WORDS)
