"""Checks on the request rather than its text: models, request types, metadata keys.

They read `request.json.model`, the request type (Portkey's endpoint names: chatComplete,
complete, embed, messages, and this gateway's responses) and the request's metadata
(x-portkey-metadata). Portkey lists them for before-request hooks; after the request they
read the request as it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.guardrails.checks import failed, flip
from gateway.guardrails.event import Subject
from gateway.guardrails.hooks import BEFORE, Check
from gateway.guardrails.results import CheckError, CheckOutcome


def _model(subject: Subject) -> str | None:
    model = subject.request.get("model")
    return model if isinstance(model, str) and model else None


def model_whitelist(check: Check, subject: Subject) -> CheckOutcome:
    models, invert = check.params["models"], check.params["not"]
    model = _model(subject)
    if model is None:
        return failed("Missing model in request", {
            "explanation": "An error occurred while checking model whitelist: "
                           "Missing model in request",
            "requestedModel": "No model specified", "not": invert, "allowedModels": models})
    verdict = flip(model in models, invert)
    if verdict:
        explanation = (f'Model "{model}" is not in the allowed list as expected.' if invert
                       else f'Model "{model}" is allowed.')
    else:
        explanation = (f'Model "{model}" is in the allowed list when it should not be.'
                       if invert else f'Model "{model}" is not in the allowed list.')
    return CheckOutcome(verdict, {"verdict": verdict, "not": invert, "explanation": explanation,
                                  "requestedModel": model, "allowedModels": models})


def model_rules(check: Check, subject: Subject) -> CheckOutcome:
    """Models allowed by the metadata values the request carries, else the defaults."""
    rules, invert = check.params["rules"], check.params["not"]
    model = _model(subject)

    def error(message: str) -> CheckOutcome:
        return failed(message, {"explanation": "An error occurred while checking model "
                                               f"rules: {message}"})

    if model is None:
        return error("Missing model in request")
    allowed: list[str] = []
    matched = []
    for key, mapping in (rules.get("metadata") or {}).items():
        value = subject.event.metadata.get(key)
        if value is None:
            continue
        for each in value if isinstance(value, list) else [value]:
            models = mapping.get(str(each))
            if isinstance(models, list):
                matched.append(f"{key}:{each}")
                allowed += [m for m in models if m not in allowed]
    using_defaults = not allowed
    if using_defaults:
        allowed = list(rules.get("defaults") or [])
    if not allowed:
        return error("No allowed models resolved from rules")
    verdict = flip(model in allowed, invert)
    if verdict:
        explanation = (f'Model "{model}" is not permitted by rules (blocked list).' if invert
                       else f'Model "{model}" is allowed by rules.')
        if matched:
            explanation += f" (matched rules: {', '.join(matched)})"
        elif using_defaults:
            explanation += " (using default models)"
    else:
        explanation = (f'Model "{model}" is permitted by rules (in blocked list).' if invert
                       else f'Model "{model}" is not allowed by rules.')
    return CheckOutcome(verdict, {"explanation": explanation})


def _listed(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    return []


def _request_type_lists(check: Check,
                        metadata: Mapping[str, Any]) -> tuple[list[str], list[str], str]:
    allowed = list(check.params.get("allowedTypes") or [])
    blocked = list(check.params.get("blockedTypes") or [])
    source = "parameters" if allowed or blocked else "default"
    if not allowed and metadata.get("supported_endpoints"):
        allowed = _listed(metadata["supported_endpoints"])
    if not blocked and metadata.get("blocked_endpoints"):
        blocked = _listed(metadata["blocked_endpoints"])
    if source == "default" and (allowed or blocked):
        source = "metadata"
    return allowed, blocked, source


def allowed_request_types(check: Check, subject: Subject) -> CheckOutcome:
    """An allowlist, a blocklist, or both (blocked wins); from parameters, else metadata."""
    allowed, blocked, source = _request_type_lists(check, subject.event.metadata)
    current = subject.request_type
    conflicts = [t for t in allowed if t in blocked]
    if conflicts:
        message = (f"Conflict detected: The following types appear in both allowedTypes and "
                   f"blockedTypes: {', '.join(conflicts)}. Please remove them from one list.")
        return failed(message, {
            "explanation": f"An error occurred while checking allowed request types: {message}",
            "currentRequestType": current, "allowedTypes": allowed, "blockedTypes": blocked})
    if not allowed and not blocked:
        mode, verdict = "unrestricted", True
        explanation = f'Request type "{current}" is allowed (no restrictions configured).'
    elif not allowed:
        mode, verdict = "blocklist", current not in blocked
        explanation = (f'Request type "{current}" is allowed (not in blocklist).' if verdict
                       else f'Request type "{current}" is blocked.')
    elif not blocked:
        mode, verdict = "allowlist", current in allowed
        explanation = (f'Request type "{current}" is allowed.' if verdict else
                       f'Request type "{current}" is not allowed. Allowed types are: '
                       f"{', '.join(allowed)}")
    else:
        mode, verdict = "combined", current in allowed and current not in blocked
        if verdict:
            explanation = f'Request type "{current}" is allowed (in allowlist and not blocked).'
        elif current in blocked:
            explanation = f'Request type "{current}" is explicitly blocked.'
        else:
            explanation = (f'Request type "{current}" is not in the allowed list. Allowed '
                           f"types (excluding blocked): {', '.join(allowed)}")
    data: dict[str, Any] = {"currentRequestType": current}
    if allowed or mode == "unrestricted":
        data["allowedTypes"] = allowed or ["all"]
    if blocked:
        data["blockedTypes"] = blocked
    data.update(verdict=verdict, explanation=explanation, source=source, mode=mode)
    return CheckOutcome(verdict, data)


_METADATA = {  # operator -> (passed, failed) explanations
    "any": ("At least one metadata key was found.", "No metadata keys were found."),
    "all": ("All metadata keys were found.", "Some metadata keys were missing."),
    "none": ("No metadata keys were found.", "Some metadata keys were found."),
}


def required_metadata_keys(check: Check, subject: Subject) -> CheckOutcome:
    """Keys present in the request's metadata; after the request: true, with an error."""
    if subject.phase != BEFORE:
        return CheckOutcome(True, None, CheckError(
            "This plugin only works for before_request_hooks"))
    keys, operator = check.params["metadataKeys"], check.params["operator"]
    metadata = subject.event.metadata
    found = [k for k in keys if k in metadata]
    missing = [k for k in keys if k not in metadata]
    verdict = {"any": bool(found), "all": not missing, "none": not found}[operator]
    reason = _METADATA[operator][0 if verdict else 1]
    return CheckOutcome(verdict, {
        "explanation": f"Check {'passed' if verdict else 'failed'} for '{operator}' metadata "
                       f"keys. {reason}",
        "missing_metadata_keys": missing, "found_metadata_keys": found, "operator": operator})
