"""Guardrails: Portkey's before/after request hooks, their checks, verdicts and statuses.

    config.py      the contract: a config node's hook keys -> Hooks, problems by path
    hooks.py       Hook, Check, HookSet (what a target runs), NodeHooks, inherit()
    parameters.py  the parameter table kinds and their validator
    registry.py    every check id: parameters, function, preparation
    spec.py        CheckSpec: what the registry says of one check
    checks/        the default.* checks (text, structure, request, mutators, pii, outbound)
    content.py     what text a check reads, per request type (dialect)
    event.py       HookEvent (what the pipeline hands in), Subject (a phase's current view)
    runner.py      GuardrailRunner: before_request / after_request -> PhaseResult
    outbound.py    webhook and log calls: SSRF guard, timeout, size cap
    json_schema.py the jsonSchema check's validator (RE2 patterns, nothing fetched)
    results.py     CheckResult, HookResult, PhaseResult, hook_results JSON
    status.py      HooksFailed (446), answer_status (246), with_hook_results
"""

from gateway.guardrails.config import parse_header, parse_node
from gateway.guardrails.event import HookEvent
from gateway.guardrails.hooks import NO_HOOKS, Hook, HookSet, NodeHooks, inherit
from gateway.guardrails.results import PhaseResult, hook_results
from gateway.guardrails.runner import GuardrailRunner
from gateway.guardrails.status import HooksFailed, answer_status, with_hook_results

__all__ = [
    "NO_HOOKS", "GuardrailRunner", "Hook", "HookEvent", "HookSet", "HooksFailed",
    "NodeHooks", "PhaseResult", "answer_status", "hook_results", "inherit", "parse_header",
    "parse_node", "with_hook_results",
]
