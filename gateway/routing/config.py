"""The config schema (`x-portkey-config`), validated once per distinct config and cached.

snake_case keys are canonical; camelCase is accepted. Every problem is reported with its
path, e.g. `targets[1].weight: must be >= 0`, in one 400.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from gateway.contracts.plan import MAX_RETRY_ATTEMPTS
from gateway.errors import InvalidRequest
from gateway.guardrails import config as hook_config
from gateway.guardrails.hooks import NO_NODE_HOOKS, NodeHooks
from gateway.routing.conditional import (
    MAX_REGEX_PROGRAM_TOTAL,
    query_problems,
    regex_program_total,
)
from gateway.routing.shape import OPTION_KEYS, check_size, shape_problems
from providers import REGISTRY

Mode = Literal["single", "fallback", "loadbalance", "conditional"]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


class Condition(_Model):
    query: dict[str, Any]
    then: str


class Strategy(_Model):
    mode: Mode
    on_status_codes: list[int] | None = None
    conditions: list[Condition] | None = None
    default: str | None = None

    @field_validator("on_status_codes")
    @classmethod
    def _statuses(cls, codes: list[int] | None) -> list[int] | None:
        if codes is not None and any(not 100 <= code <= 599 for code in codes):
            raise ValueError("must be HTTP status codes between 100 and 599")
        return codes


class Retry(_Model):
    attempts: int = Field(ge=0)
    on_status_codes: list[int] | None = None
    use_retry_after_header: bool = True

    @field_validator("attempts")
    @classmethod
    def _cap(cls, attempts: int) -> int:
        return min(attempts, MAX_RETRY_ATTEMPTS)


class Cache(_Model):
    mode: Literal["simple", "semantic"]
    max_age: int | None = Field(None, gt=0)


class ConfigNode(_Model):
    """A node of the tree: a strategy over targets, or a leaf naming a provider."""

    # Provider options (resource_name, aws_region, ...) pass as extra keys; which extra keys
    # are allowed is decided before the model runs, in routing/shape.py.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow",
                              frozen=True)

    strategy: Strategy | None = None
    targets: list[ConfigNode] | None = None
    name: str | None = None
    weight: float = Field(1.0, ge=0)
    provider: str | None = None
    api_key: str | None = None
    virtual_key: str | None = None
    override_params: dict[str, Any] | None = None
    retry: Retry | None = None
    cache: Cache | None = None
    request_timeout: int | None = Field(None, gt=0)
    custom_host: str | None = None
    forward_headers: list[str] | None = None
    strict_open_ai_compliance: bool | None = None  # accepted, not acted on (always strict)
    # Guardrails (gateway/guardrails/config.py): kept raw, parsed once into `hooks`.
    before_request_hooks: list[Any] | None = None
    after_request_hooks: list[Any] | None = None
    input_guardrails: list[Any] | None = None
    output_guardrails: list[Any] | None = None
    input_mutators: list[Any] | None = None
    output_mutators: list[Any] | None = None
    default_input_guardrails: list[Any] | None = None  # the root only
    default_output_guardrails: list[Any] | None = None  # the root only
    _hooks: NodeHooks = PrivateAttr(default=NO_NODE_HOOKS)
    _hook_problems: list[str] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        lists = {key: getattr(self, key) for key in hook_config.KEYS}
        if any(value is not None for value in lists.values()):
            self._hooks, self._hook_problems = hook_config.parse_node(lists)

    @property
    def hooks(self) -> NodeHooks:
        """This node's own hooks (inherit them down the tree with guardrails.inherit)."""
        return self._hooks

    @property
    def hook_problems(self) -> list[str]:
        """What is wrong with this node's hooks, by path relative to the node."""
        return self._hook_problems

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, slug: str | None) -> str | None:
        if slug is not None and slug not in REGISTRY:
            raise ValueError(f"unknown provider '{slug}'")
        return slug

    def options(self) -> dict[str, str]:
        """Provider options given as extra keys, named like their x-portkey-* headers.

        Only keys in `OPTION_KEYS` get this far (`shape_problems` refuses any other); an
        object value (a service account JSON) is passed on as its JSON text.
        """
        extra = self.model_extra or {}
        return {OPTION_KEYS[k]: v if isinstance(v, str) else orjson.dumps(v).decode()
                for k, v in extra.items() if k in OPTION_KEYS}

_MESSAGES = {
    "greater_than_equal": "must be >= {ge:g}",
    "greater_than": "must be > {gt:g}",
    "missing": "is required",
}


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "config"


def _describe(error: dict[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    message = template.format(**error.get("ctx", {})) if template else error["msg"]
    return f"{_location(tuple(error['loc']))}: {message.removeprefix('Value error, ')}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _semantic_problems(node: ConfigNode, path: str) -> list[str]:
    def where(key: str) -> str:
        return _join(path, key)

    problems = [_join(path, problem) for problem in node.hook_problems]
    if path and (node.default_input_guardrails is not None
                 or node.default_output_guardrails is not None):
        problems.append(f"{path}: default_input_guardrails and default_output_guardrails "
                        "belong at the root of the config")
    if node.targets is not None:
        if not node.targets:
            problems.append(f"{where('targets')}: must not be empty")
        if node.strategy is None:
            problems.append(f"{where('strategy')}: is required when targets are given")
        for i, child in enumerate(node.targets):
            problems += _semantic_problems(child, f"{where('targets')}[{i}]")
    elif node.strategy is not None:
        problems.append(f"{where('targets')}: is required when a strategy is given")
    if node.strategy is None or not node.targets:
        return problems
    if node.strategy.mode == "loadbalance" and not any(t.weight > 0 for t in node.targets):
        problems.append(f"{where('targets')}: at least one weight must be > 0")
    if node.strategy.mode == "conditional":
        problems += _conditional_problems(node, path)
    return problems


def _conditional_problems(node: ConfigNode, path: str) -> list[str]:
    assert node.strategy is not None and node.targets is not None

    def where(key: str) -> str:
        return _join(path, key)

    names = {t.name for t in node.targets if t.name}
    problems = []
    if not node.strategy.conditions:
        problems.append(f"{where('strategy.conditions')}: conditional mode needs conditions")
    for i, condition in enumerate(node.strategy.conditions or []):
        at = f"{where('strategy.conditions')}[{i}]"
        problems += query_problems(condition.query, f"{at}.query")
        if condition.then not in names:
            problems.append(f"{at}.then: no target is named '{condition.then}'")
    default = node.strategy.default
    if default is not None and default not in names:
        problems.append(f"{where('strategy.default')}: no target is named '{default}'")
    return problems


def _regex_total(node: ConfigNode) -> int:
    """RE2 instructions of every `$regex` in the config: each may run on one request."""
    conditions = node.strategy.conditions or [] if node.strategy else []
    return (sum(regex_program_total(c.query) for c in conditions)
            + sum(_regex_total(child) for child in node.targets or []))


def validate_config(data: Any, param: str = "x-portkey-config") -> ConfigNode:
    """The one validator of configs: inline, saved ones at use, and every config being saved.

    Caps first (routing/shape.py: they raise at once), then unknown keys, the schema and
    the semantics, all reported together in one 400.
    """
    if not isinstance(data, dict):
        raise InvalidRequest("config must be a JSON object", param=param, code="invalid_config")
    try:
        problems = shape_problems(data)
    except InvalidRequest as exc:
        exc.param = param
        raise
    try:
        node = ConfigNode.model_validate(data)
    except ValidationError as exc:
        # Unknown keys were reported above, with a suggestion.
        problems += [_describe(e) for e in exc.errors()  # type: ignore[arg-type]
                     if e["type"] != "extra_forbidden"]
    else:
        problems += _semantic_problems(node, "")
        if not problems and (total := _regex_total(node)) > MAX_REGEX_PROGRAM_TOTAL:
            problems.append(f"strategy.conditions: the $regex patterns total {total} RE2 "
                            f"instructions, over the cap of {MAX_REGEX_PROGRAM_TOTAL} "
                            "(see README: Bounded work per request)")
    if problems:
        error = InvalidRequest("invalid config: " + "; ".join(problems), param=param,
                               code="invalid_config")
        error.extra["errors"] = problems
        raise error
    return node


def validate_saved(data: Any) -> ConfigNode:
    """A config about to be saved (admin API, SDK, CLI, console): the same checks, plus size."""
    try:
        check_size(len(orjson.dumps(data)))
    except InvalidRequest as exc:
        exc.param = "config"
        raise
    return validate_config(data, param="config")


class ConfigCache:
    """Parsed configs by their exact text, so each distinct config is validated once."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._entries: OrderedDict[str, ConfigNode] = OrderedDict()

    def parse(self, text: str) -> ConfigNode:
        node = self._entries.get(text)
        if node is not None:
            self._entries.move_to_end(text)
            return node
        check_size(len(text))
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidRequest("x-portkey-config is neither JSON nor a saved config id",
                                 param="x-portkey-config", code="invalid_config") from None
        node = validate_config(data)
        self._entries[text] = node
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return node
