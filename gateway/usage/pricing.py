"""Prices per provider and model, from the shipped table and the operator's overrides.

Prices are USD per million tokens: input, output, and cached input (cache reads; input price
when absent). Dated model ids (`gpt-4o-2024-08-06`, `claude-3-5-sonnet-20241022`) match their
base model. An unknown model has no price: its cost is logged as null, never as zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Generic, TypeVar

import orjson

_MILLION = Decimal(1_000_000)
_REMEMBERED = 4096
T = TypeVar("T")
# Suffixes that version a model without changing its price.
_VERSION_SUFFIX = re.compile(
    r"(@\d{8}|-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{3,4}|-latest|-v\d+(:\d+)?|:\d+)$")
# Bedrock ids: an optional cross-region prefix, then the vendor.
_BEDROCK_PREFIX = re.compile(
    r"^(?:(?:us|eu|apac|global)\.)?(?:anthropic|meta|mistral|cohere|amazon|ai21)\.")
# Resellers of other vendors' models: priced by the vendor's row.
# Self-hosted backends: free unless the operator prices their models.
SELF_HOSTED = frozenset({"vllm", "ollama"})
RESELLERS = {"azure-openai": ("openai",), "vertex-ai": ("google", "anthropic"),
             "bedrock": ("anthropic", "mistral-ai", "cohere"), "openrouter": ()}


@dataclass(frozen=True, slots=True)
class Price:
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    @classmethod
    def parse(cls, row: Mapping[str, Any] | Any) -> Price:
        if hasattr(row, "model_dump"):  # a validated ModelPrice from the settings
            row = row.model_dump()
        cached = row.get("cached_input")
        return cls(Decimal(str(row["input"])), Decimal(str(row["output"])),
                   None if cached is None else Decimal(str(cached)))

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Decimal:
        """Exact USD; `prompt_tokens` includes the cached ones."""
        cached_price = self.input if self.cached_input is None else self.cached_input
        fresh = max(prompt_tokens - cached_tokens, 0)
        total = fresh * self.input + cached_tokens * cached_price + completion_tokens * self.output
        return total / _MILLION


FREE = Price(Decimal(0), Decimal(0))


# Longer names are nobody's model (the longest known are under 100 characters): looked up as
# they are. A client chooses the name, and each suffix stripped rescans it.
MAX_MODEL_NAME = 256


def base_model(model: str) -> str:
    """`gpt-4o-2024-08-06` → `gpt-4o`; `us.anthropic.claude-3-haiku-20240307-v1:0` →
    `claude-3-haiku`."""
    if len(model) > MAX_MODEL_NAME:  # no model is named so; stripping suffixes is quadratic
        return model
    name = _BEDROCK_PREFIX.sub("", model.removeprefix("models/"))
    previous = None
    while previous != name:
        previous = name
        name = _VERSION_SUFFIX.sub("", name)
    return name


def load_table() -> dict[str, dict[str, Price]]:
    raw = orjson.loads(resources.files("gateway").joinpath("data/prices.json").read_bytes())
    return {provider: {model: Price.parse(row) for model, row in rows.items()}
            for provider, rows in raw["providers"].items()}


class ModelRows(Generic[T]):
    """A value per model, found in order: the operator's rows (`<provider>/<model>`, then
    `<model>`), then the shipped table's (the provider's rows, then the vendor's for a
    reseller), else `default(provider)`. A dated or versioned id
    (`claude-sonnet-4-5-20250929`, `us.anthropic.claude-3-7-sonnet-20250219-v1:0`) takes its
    base model's row when it has none of its own. Prices and output limits both look up so."""

    def __init__(self, table: Mapping[str, Mapping[str, T]], overrides: Mapping[str, T],
                 default: Callable[[str], T | None] = lambda provider: None) -> None:
        self.table = table
        self.overrides = overrides
        self.default = default
        # (provider, model) -> value: every request looks its model up, from a handful of names.
        self._found: dict[tuple[str, str], T | None] = {}

    def find(self, provider: str, model: str) -> T | None:
        key = (provider, model)
        if key not in self._found:
            found = self._look_up(provider, model)
            if len(self._found) >= _REMEMBERED:  # model names are caller-chosen: stay bounded
                self._found.clear()
            self._found[key] = found
        return self._found[key]

    def _look_up(self, provider: str, model: str) -> T | None:
        base = base_model(model)
        for name in dict.fromkeys((model, base)):
            found = self.overrides.get(f"{provider}/{name}") or self.overrides.get(name)
            if found:
                return found
        for vendor in (provider, *RESELLERS.get(provider, ())):
            rows = self.table.get(vendor, {})
            found = rows.get(model) or rows.get(base)
            if found:
                return found
        return self.default(provider)


class PriceBook:
    """Finds a price: virtual-key override, then the operator's and the shipped rows
    (`ModelRows`); self-hosted models are free unless priced."""

    def __init__(self, table: dict[str, dict[str, Price]],
                 overrides: Mapping[str, Any] | None = None) -> None:
        self.rows = ModelRows(table, {key: Price.parse(row)
                                      for key, row in (overrides or {}).items()},
                              lambda provider: FREE if provider in SELF_HOSTED else None)

    def price(self, provider: str, model: str | None,
              key_prices: Mapping[str, Any] | None = None) -> Price | None:
        if not model:
            return None
        if key_prices:
            row = key_prices.get(model) or key_prices.get("*")
            if row:
                return Price.parse(row)
        return self.rows.find(provider, model)
