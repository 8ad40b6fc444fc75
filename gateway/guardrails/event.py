"""What hooks look at: the event (one request and, after it, its answer) and a phase's subject.

`HookEvent` is what the pipeline hands the runner at each hook point. `Subject` is one
phase's current view of it: the JSON the phase checks (the request before the upstream call,
the answer after it), replaced whenever a mutator or a webhook transforms it, with the text
checks read extracted once (content.py) and shared by every check of the phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.guardrails import content
from gateway.guardrails.hooks import BEFORE, Phase

# Request types hooks run on (Portkey's endpoint names; "responses" is this gateway's).
REQUEST_TYPES = frozenset({"chatComplete", "complete", "embed", "messages", "responses"})
# The unified routes (providers.base.Endpoint values) -> their request types. A body decoded
# from Anthropic Messages or OpenAI Responses into the canonical chat body is a chatComplete
# body; "messages" and "responses" are for hooks given the client's native body.
ENDPOINT_REQUEST_TYPES = {"chat/completions": "chatComplete", "completions": "complete",
                          "embeddings": "embed"}


_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class HookEvent:
    """Made for every request a hook runs on: a slots dataclass, immutable by convention
    (results.py says why not frozen, nor a NamedTuple); `answered` gives the answer's."""

    request_type: str  # chatComplete | complete | embed | messages | responses
    request: Mapping[str, Any]  # the request body as the target is sent it (canonical JSON)
    provider: str = ""
    metadata: Mapping[str, Any] = field(default_factory=lambda: _NO_METADATA)  # x-portkey-metadata
    stream: bool = False
    response: Mapping[str, Any] | None = None  # the answer (after-request hooks)
    status: int | None = None  # the upstream's status (after-request hooks)

    def answered(self, response: Mapping[str, Any], status: int) -> HookEvent:
        """This request's event with its answer, for the after-request hooks."""
        return HookEvent(self.request_type, self.request, self.provider, self.metadata,
                         self.stream, response, status)


class Subject:
    """One phase's current JSON and the text checks read from it, read once when it is made
    (every check reads `text`: a plain attribute, not a property)."""

    __slots__ = ("phase", "event", "json", "transformed", "part", "text")

    def __init__(self, phase: Phase, event: HookEvent, json: Mapping[str, Any] | None,
                 transformed: bool = False) -> None:
        self.phase = phase
        self.event = event
        self.json = json
        self.transformed = transformed
        self.part = content.read(self.table, event.request_type, json)
        self.text = self.part.text

    @classmethod
    def of(cls, phase: Phase, event: HookEvent) -> Subject:
        return cls(phase, event, event.request if phase == BEFORE else event.response)

    @property
    def request_type(self) -> str:
        return self.event.request_type

    @property
    def table(self) -> Mapping[str, tuple[content.Getter, content.Setter | None]]:
        return content.REQUEST_CONTENT if self.phase == BEFORE else content.ANSWER_CONTENT

    @property
    def request(self) -> Mapping[str, Any]:
        """The request body as it stands (transformed, in the before phase)."""
        if self.phase == BEFORE:
            return self.json or {}
        return self.event.request

    def with_texts(self, texts: tuple[str | None, ...]) -> dict[str, Any] | None:
        """A copy of the JSON with the content's texts replaced (None: cannot be written)."""
        if self.json is None:
            return None
        return content.write(self.table, self.request_type, self.json, texts)

    def replaced(self, json: Mapping[str, Any]) -> Subject:
        return Subject(self.phase, self.event, json, transformed=True)

    def context(self) -> dict[str, Any]:
        """Portkey's hook context, as the webhook and log checks post it (no headers, ever)."""
        request = self.request
        response = self.json if self.phase != BEFORE else None
        answer_text = (content.read(content.ANSWER_CONTENT, self.request_type, response).text
                       if response is not None else "")
        return {
            "request": {"json": request, "text": content.read(
                content.REQUEST_CONTENT, self.request_type, request).text,
                "isStreamingRequest": self.event.stream,
                "isTransformed": self.transformed and self.phase == BEFORE},
            "response": {"json": response, "text": answer_text,
                         "statusCode": self.event.status,
                         "isTransformed": self.transformed and self.phase != BEFORE},
            "provider": self.event.provider,
            "requestType": self.request_type,
            "metadata": dict(self.event.metadata),
        }
