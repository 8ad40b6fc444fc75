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

from gateway.usage.pricing import RESELLERS, base_model

# The dialects whose bodies are translated to Chat Completions by the gateway.
CLAMPED_DIALECTS = frozenset({"messages", "responses"})
_FIELD = "max_completion_tokens"  # what both dialects' translations write
_REMEMBERED = 4096


def load_limits() -> dict[str, dict[str, int]]:
    raw = orjson.loads(resources.files("gateway").joinpath("data/output_limits.json")
                       .read_bytes())
    return {provider: {model: int(limit) for model, limit in rows.items()}
            for provider, rows in raw["providers"].items()}


class OutputLimits:
    """Finds a model's output limit: the operator's row (`<provider>/<model>`, then
    `<model>`), then the shipped table (the provider's rows, then the vendor's for a
    reseller). A dated or versioned id (`claude-sonnet-4-5-20250929`,
    `us.anthropic.claude-3-7-sonnet-20250219-v1:0`) matches its base model's row when it has
    none of its own, as prices do."""

    def __init__(self, table: Mapping[str, Mapping[str, int]],
                 overrides: Mapping[str, int] | None = None) -> None:
        self.table = table
        self.overrides = dict(overrides or {})
        # (provider, model) -> limit: a handful of names, looked up on every request.
        self._found: dict[tuple[str, str], int | None] = {}

    @classmethod
    def shipped(cls) -> OutputLimits:
        return cls(load_limits())

    def limit(self, provider: str, model: str | None) -> int | None:
        if not model:
            return None
        key = (provider, model)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = self._look_up(provider, model)
        if len(self._found) >= _REMEMBERED:  # model names are caller-chosen: stay bounded
            self._found.clear()
        self._found[key] = found
        return found

    def _look_up(self, provider: str, model: str) -> int | None:
        base = base_model(model)
        names = (model, base) if base != model else (model,)
        for name in names:
            found = self.overrides.get(f"{provider}/{name}") or self.overrides.get(name)
            if found:
                return found
        for vendor in (provider, *RESELLERS.get(provider, ())):
            rows = self.table.get(vendor)
            if rows:
                for name in names:
                    if name in rows:
                        return rows[name]
        return None


def clamp_output(body: dict[str, Any], limit: int | None,
                 override_params: Mapping[str, Any]) -> None:
    """Lower the body's requested output to `limit` in place (the body is the target's own
    copy, made by prepare)."""
    if limit is None or _FIELD in override_params or "max_tokens" in override_params:
        return  # the operator set the target's output: theirs is the word
    asked = body.get(_FIELD)
    if type(asked) is int and asked > limit:
        body[_FIELD] = limit
