"""What the pipeline reads in native Responses answers (from OpenAI or Azure OpenAI, reached
untranslated): usage for billing, error events, the end of a stream, and the whole Response
for the cache (replayed as its event sequence when a streaming request hits it)."""

from __future__ import annotations

from typing import Any

from gateway.pipeline.dialects.responses_replay import events
from providers.base import ProviderError, StreamError

# Terminal events of a Responses stream; one of them must come before the stream ends.
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ERROR_STATUS = {"rate_limit_exceeded": 429, "invalid_prompt": 400, "server_error": 500}


class ResponsesNative:
    name = "responses"
    headers: tuple[str, ...] = ()  # no client header reaches OpenAI but the key the adapter sets

    def usage(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        return chat_usage(body.get("usage"))

    def stream(self, path: str) -> ResponseWatcher:
        return ResponseWatcher()

    def replay(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return replay_response(body)

    async def local_answer(self, path: str, body: dict[str, Any]) -> bytes | None:
        return None  # every target can answer a Responses request, translated


RESPONSES_NATIVE = ResponsesNative()


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Responses usage in the OpenAI chat shape the usage log bills."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    result: dict[str, Any] = {
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _detail(usage, "input", "cached_tokens")}}
    reasoning = _detail(usage, "output", "reasoning_tokens")
    if reasoning:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return result


def _detail(usage: dict[str, Any], side: str, name: str) -> int:
    details = usage.get(f"{side}_tokens_details")
    return _count(details.get(name)) if isinstance(details, dict) else 0


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class ResponseWatcher:
    """One native stream: its usage, its end, and the Response it ends with."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None
        self.response: dict[str, Any] | None = None
        self.ended = False

    def event(self, event: dict[str, Any]) -> str:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            return delta if isinstance(delta, str) else ""
        if kind in TERMINAL:
            self.ended = True
            response = event.get("response")
            if isinstance(response, dict):
                self.usage = chat_usage(response.get("usage"))
                if kind == "response.completed":
                    self.response = response
        elif kind == "error":
            code = event.get("code")
            raise StreamError(ProviderError(
                _ERROR_STATUS.get(str(code), 500), str(event.get("message") or "stream error"),
                "upstream_error", param=event.get("param"), code=code))
        return ""

    def end(self) -> None:
        if not self.ended:
            raise StreamError(ProviderError(502, "the stream ended before response.completed",
                                            "upstream_error", code="stream_truncated"))

    def result(self) -> dict[str, Any] | None:
        return self.response


def replay_response(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The event sequence of a stream that carries this whole Response: the replay of a
    stored one (responses_replay.py), so a cached answer ends as its status says."""
    return [{"type": kind, "sequence_number": number, **fields}
            for number, (kind, fields) in enumerate(events(response))]
