"""The hook contract as typed, frozen objects: what a config's guardrails parse into.

A `Hook` is Portkey's hook object (`id`, `type`, `checks`, `deny`, `async`, `sequential`,
`on_fail`, `on_success`); a `Check` is one `{id, parameters, is_enabled}` entry, its
parameters validated and defaulted, and its patterns and schemas compiled once, when the
config is read. A `HookSet` is what runs for one target: the before-request and the
after-request hooks. `NodeHooks` is what one node of the config tree says of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.guardrails.spec import CheckSpec

Phase = Literal["beforeRequestHook", "afterRequestHook"]
BEFORE: Phase = "beforeRequestHook"
AFTER: Phase = "afterRequestHook"

HookType = Literal["guardrail", "mutator"]
GUARDRAIL: HookType = "guardrail"
MUTATOR: HookType = "mutator"


@dataclass(frozen=True, slots=True)
class Feedback:
    """`on_fail.feedback` / `on_success.feedback`: echoed into the hook's result."""

    value: float | None = None
    weight: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Check:
    id: str  # "<plugin>.<function>", e.g. "default.contains"
    params: Mapping[str, Any]  # validated, with the manifest's defaults filled in
    spec: CheckSpec = field(repr=False, compare=False)
    enabled: bool = True
    fail_on_error: bool = False  # parameters.failOnError: an erroring check counts as failed
    compiled: Any = field(default=None, repr=False, compare=False)  # patterns, schema

    @property
    def io(self) -> bool:
        """The check calls out over the network (webhook, log)."""
        return self.spec.io


@dataclass(frozen=True, slots=True)
class Hook:
    id: str
    type: HookType
    checks: tuple[Check, ...]
    deny: bool = False
    is_async: bool = False  # `async` in the config: run off the request's critical path
    sequential: bool = False
    on_fail: Feedback | None = None
    on_success: Feedback | None = None
    # Derived once, when the config is read, for the runner's every request:
    enabled: tuple[Check, ...] = field(init=False, repr=False, compare=False)
    io: bool = field(init=False, repr=False, compare=False)  # an enabled check calls out
    # A synchronous guardrail whose checks all run in process and see the same body: the
    # runner can call them in one plain loop (runner.py, "the plain path").
    plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        enabled = tuple(check for check in self.checks if check.enabled)
        io = any(check.io for check in enabled)
        object.__setattr__(self, "enabled", enabled)
        object.__setattr__(self, "io", io)
        object.__setattr__(self, "plain", self.type == GUARDRAIL and not (
            io or self.is_async or self.sequential))


@dataclass(frozen=True, slots=True)
class HookSet:
    """The hooks one target runs: before the upstream call and after its answer."""

    before: tuple[Hook, ...] = ()
    after: tuple[Hook, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.before or self.after)

    def plus(self, other: HookSet) -> HookSet:
        """`other`'s hooks appended (default guardrails run after a target's own)."""
        if not other:
            return self
        return HookSet(self.before + other.before, self.after + other.after)


NO_HOOKS = HookSet()


@dataclass(frozen=True, slots=True)
class NodeHooks:
    """What one config node declares. None: the node names no list for that phase, so it
    inherits its parent's; a tuple (even empty) replaces the parent's, as in Portkey."""

    before: tuple[Hook, ...] | None = None
    after: tuple[Hook, ...] | None = None
    # default_input_guardrails / default_output_guardrails (the root only): appended to
    # every target's hooks, whatever the target declares.
    defaults: HookSet = NO_HOOKS
    # Its lists under a parent without hooks (the common case), made once: plans are built
    # for every request.
    own: HookSet = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "own", HookSet(self.before or (), self.after or ()))


NO_NODE_HOOKS = NodeHooks()


def inherit(parent: HookSet, node: NodeHooks) -> HookSet:
    """A child's own list wins, phase by phase; without one it inherits its parent's."""
    if node.before is None and node.after is None:
        return parent
    if not parent:
        return node.own
    return HookSet(parent.before if node.before is None else node.before,
                   parent.after if node.after is None else node.after)
