"""The most output tokens each known model may be asked for, and the clamp that applies it.

Clients of the translated dialects ask for what their own API's models allow: Claude Code
sends `max_tokens: 32000` (64000 for Opus) whatever model the gateway routes it to, and a
chat target whose model stops at 16384 or 8192 refuses the whole request. So when a Messages
or Responses request is translated for a target (`prepare.py`), its `max_completion_tokens`
is lowered to the target model's limit, from the shipped table (gateway/data/
output_limits.json) or the operator's GATEWAY_MODEL_OUTPUT_LIMITS. An unknown model is not
clamped: the value goes as sent and the target decides. Chat Completions clients are never
clamped (they name their target's model and its limit themselves, as with OpenAI), nor
native targets (Anthropic checks the value it defined), nor a value a config target's
`override_params` sets, as `max_completion_tokens` or `max_tokens` (the operator's word).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import orjson

from gateway.usage.pricing import ModelRows

# The dialects whose bodies are translated to Chat Completions by the gateway.
CLAMPED_DIALECTS = frozenset({"messages", "responses"})
_FIELD = "max_completion_tokens"  # what both dialects' translations write


def load_limits() -> dict[str, dict[str, int]]:
    raw = orjson.loads(resources.files("gateway").joinpath("data/output_limits.json")
                       .read_bytes())
    return {provider: {model: int(limit) for model, limit in rows.items()}
            for provider, rows in raw["providers"].items()}


class OutputLimits:
    """A model's output limit: the operator's row, then the shipped table's, as prices are
    found (`ModelRows`: resellers, dated and versioned ids)."""

    def __init__(self, table: Mapping[str, Mapping[str, int]],
                 overrides: Mapping[str, int] | None = None) -> None:
        self.rows = ModelRows(table, dict(overrides or {}))

    @classmethod
    def shipped(cls) -> OutputLimits:
        return cls(load_limits())

    def limit(self, provider: str, model: str | None) -> int | None:
        return self.rows.find(provider, model) if model else None


def clamp_output(body: dict[str, Any], limit: int | None,
                 override_params: Mapping[str, Any]) -> int | None:
    """Lower the body's requested output to `limit` in place (the body is the target's own
    copy, made by prepare); the value it now asks for when lowered, else None."""
    if limit is None or _FIELD in override_params or "max_tokens" in override_params:
        return None  # the operator set the target's output: theirs is the word
    asked = body.get(_FIELD)
    if type(asked) is int and asked > limit:
        body[_FIELD] = limit
        return limit
    return None
