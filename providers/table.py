"""The one interpreter of provider parameter tables, and the OpenAI names they may use.

A table maps an OpenAI request field to a `Param`: a dotted target in the provider's body,
plus an optional transform, clamp and default. Fields without a row are not sent: a
translating provider would reject OpenAI-only fields, so what is dropped is visible in the
table. Provider-native extras (Anthropic's `top_k`, Gemini's `safety_settings`) live in a
second table, `NATIVE`, whose keys must NOT be OpenAI names (tests/test_layout.py checks both).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import MERGE, ConfigurationError, Param

# Request fields of OpenAI's chat, completions and embeddings APIs.
OPENAI_PARAMS = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop",
    "store", "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs",
    "top_p", "user", "verbosity", "web_search_options",
    # completions
    "prompt", "best_of", "echo", "suffix",
    # embeddings
    "input", "dimensions", "encoding_format",
})


def apply(params: Mapping[str, Param], body: Mapping[str, Any]) -> dict[str, Any]:
    """The provider body that `params` makes of an OpenAI `body`; rows apply in table order."""
    out: dict[str, Any] = {}
    for key, param in params.items():
        value = body.get(key)
        if value is None:
            continue
        if param.transform is not None:
            value = param.transform(value)
        if param.clamp is not None:
            value = _clamp(key, value, param.clamp)
        if value is not None:
            _put(out, param.target, value)
    for param in params.values():
        if param.default is not None and _get(out, param.target) is None:
            _put(out, param.target, param.default)
    return out


def as_list(value: Any) -> list[Any]:
    """OpenAI allows `stop: "x"`; providers want `["x"]`."""
    return value if isinstance(value, list) else [value]


def negate(value: Any) -> bool | None:
    """`parallel_tool_calls: false` becomes `disable_parallel...: true`; true sends nothing."""
    return True if value is False else None


def _clamp(key: str, value: Any, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"'{key}' must be a number")
    low, high = bounds
    return min(max(value, low), high)


def _put(out: dict[str, Any], path: str, value: Any) -> None:
    if path == MERGE:
        _merge(out, value)
        return
    *parents, leaf = path.split(".")
    node = out
    for name in parents:
        node = node.setdefault(name, {})
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        _merge(node[leaf], value)
    else:
        node[leaf] = value


def _merge(into: dict[str, Any], value: Mapping[str, Any]) -> None:
    for key, item in value.items():
        if isinstance(item, dict) and isinstance(into.get(key), dict):
            _merge(into[key], item)
        else:
            into[key] = item


def _get(out: Mapping[str, Any], path: str) -> Any:
    if path == MERGE:
        return None
    node: Any = out
    for name in path.split("."):
        if not isinstance(node, Mapping) or name not in node:
            return None
        node = node[name]
    return node
