"""A stored Response replayed as the Responses event stream (`GET /v1/responses/{id}
?stream=true`), as OpenAI replays a background response.

The events are those a live stream of the same answer sends (responses_stream.py), with each
part's text, each summary's text and each call's arguments in one delta:

    response.created, response.in_progress                  (the snapshot: in_progress, no output)
    per output item, at its own output_index:
      response.output_item.added                            (the item, in progress and empty)
      message:   content_part.added, output_text.delta (or refusal.delta), .done,
                 content_part.done                          for each content part
      reasoning: reasoning_summary_part.added, reasoning_summary_text.delta, .done,
                 reasoning_summary_part.done                for each summary part, then
                 content_part.added, reasoning_text.delta, .done, content_part.done
      function_call: function_call_arguments.delta, .done
      response.output_item.done                             (the item as stored)
    response.completed | response.incomplete | response.failed   (the Response as stored)

`sequence_number` counts from 0. The replay is a pure function of the stored Response, so a
client resuming with `starting_after=N` gets exactly the events after the N-th it saw.

A stored Response is untrusted (a native target's answer is kept as it came): an output item,
content part or summary part that is not an object is skipped (`output_index` counts the
items replayed), a text that is not a string replays as "". The last event follows the
status: `completed` (or none) ends with response.completed, `failed` with response.failed,
and any other (`incomplete`, and `cancelled`, `in_progress`, `queued`, which a stored
response has only from a native target: the Responses stream has no event of their own, and
nothing of it runs any more) with response.incomplete, so a client never reads a response
that did not complete as completed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

_TERMINAL = {"completed": "response.completed", None: "response.completed",
             "failed": "response.failed"}  # any other status: response.incomplete
# Fields of the final Response that its in-progress snapshot does not have yet.
_FINAL_ONLY = ("output_text", "hook_results")

Event = tuple[str, dict[str, Any]]


def replay(response: dict[str, Any], starting_after: int = -1) -> bytes:
    """The SSE body: every event of `response` whose sequence_number is above
    `starting_after`, each with its `event:` line."""
    out: list[bytes] = []
    for sequence, (kind, fields) in enumerate(events(response)):
        if sequence > starting_after:
            data = orjson.dumps({"type": kind, "sequence_number": sequence, **fields})
            out.append(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")
    return b"".join(out)


def events(response: dict[str, Any]) -> Iterator[Event]:
    snapshot = {key: value for key, value in response.items() if key not in _FINAL_ONLY}
    snapshot.update(status="in_progress", output=[], usage=None, error=None,
                    incomplete_details=None)
    yield "response.created", {"response": snapshot}
    yield "response.in_progress", {"response": snapshot}
    for index, item in enumerate(_objects(response.get("output"))):
        yield from _item(index, item)
    status = response.get("status")
    yield _TERMINAL.get(status if status is None or isinstance(status, str) else "",
                        "response.incomplete"), {"response": response}


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a stored list (anything else in it, or in its place, is skipped)."""
    return [each for each in value if isinstance(each, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _item(index: int, item: dict[str, Any]) -> Iterator[Event]:
    kind = item.get("type")
    at = {"item_id": item.get("id"), "output_index": index}
    if kind == "message":
        yield "response.output_item.added", {"output_index": index, "item": {
            **item, "status": "in_progress", "content": []}}
        for position, part in enumerate(_objects(item.get("content"))):
            yield from _content_part(at | {"content_index": position}, part)
    elif kind == "reasoning":
        yield "response.output_item.added", {"output_index": index, "item": {
            **item, "status": "in_progress", "summary": [], "content": []}}
        for position, part in enumerate(_objects(item.get("summary"))):
            yield from _summary_part(at | {"summary_index": position}, part)
        for position, part in enumerate(_objects(item.get("content"))):
            yield from _content_part(at | {"content_index": position}, part)
    elif kind == "function_call":
        arguments = _text(item.get("arguments"))
        yield "response.output_item.added", {"output_index": index, "item": {
            **item, "status": "in_progress", "arguments": ""}}
        if arguments:
            yield "response.function_call_arguments.delta", at | {"delta": arguments}
        yield "response.function_call_arguments.done", at | {
            "name": item.get("name"), "arguments": arguments}
    else:  # a native built-in tool's item (web_search_call, ...): added, then done
        yield "response.output_item.added", {"output_index": index, "item": item}
    yield "response.output_item.done", {"output_index": index, "item": item}


def _content_part(at: dict[str, Any], part: dict[str, Any]) -> Iterator[Event]:
    kind = part.get("type")
    if kind == "output_text":
        text = _text(part.get("text"))
        empty = {**part, "text": "", "annotations": []}
        if "logprobs" in part:
            empty["logprobs"] = []
        yield "response.content_part.added", at | {"part": empty}
        if text:
            yield "response.output_text.delta", at | {"delta": text, "logprobs": []}
        yield "response.output_text.done", at | {"text": text, "logprobs": []}
    elif kind == "refusal":
        refusal = _text(part.get("refusal"))
        yield "response.content_part.added", at | {"part": {**part, "refusal": ""}}
        if refusal:
            yield "response.refusal.delta", at | {"delta": refusal}
        yield "response.refusal.done", at | {"refusal": refusal}
    elif kind == "reasoning_text":
        text = _text(part.get("text"))
        yield "response.content_part.added", at | {"part": {**part, "text": ""}}
        if text:
            yield "response.reasoning_text.delta", at | {"delta": text}
        yield "response.reasoning_text.done", at | {"text": text}
    else:
        yield "response.content_part.added", at | {"part": part}
    yield "response.content_part.done", at | {"part": part}


def _summary_part(at: dict[str, Any], part: dict[str, Any]) -> Iterator[Event]:
    text = _text(part.get("text"))
    yield "response.reasoning_summary_part.added", at | {"part": {**part, "text": ""}}
    if text:
        yield "response.reasoning_summary_text.delta", at | {"delta": text}
    yield "response.reasoning_summary_text.done", at | {"text": text}
    yield "response.reasoning_summary_part.done", at | {"part": part}
