"""The checks that call out: webhook (a verdict, maybe a rewritten body) and log.

Both post Portkey's hook context (request, response, provider, requestType, metadata and the
eventType) as JSON, never the request's headers (Portkey's log check sends them, API keys
included). A webhook answers `{verdict, data?, transformedData?}`; its
`transformedData.request.json` replaces the request before it is sent (before-request hooks
only), `transformedData.response.json` the answer (after-request hooks only).

What the webhook answers reaches the client in `hook_results`; the webhook's own secrets (its
`headers` and the URL's credentials and query, set by whoever wrote the config, maybe an
operator's key defaults) are redacted from it first, as the gateway redacts any upstream echo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway.guardrails.checks import failed
from gateway.guardrails.event import Subject
from gateway.guardrails.hooks import BEFORE, Check
from gateway.guardrails.outbound import Outbound, OutboundError, shown
from gateway.guardrails.results import CheckOutcome
from gateway.redact import MIN_SECRET, redact

# Redacting costs about 0.5 s a MiB (gateway/redact): answers longer than this are
# redacted in a worker thread, off the event loop.
_REDACT_INLINE_CHARS = 16 * 1024


def _payload(subject: Subject) -> dict[str, Any]:
    return {**subject.context(), "eventType": subject.phase}


def _replacement(answer: dict[str, Any], subject: Subject) -> dict[str, Any] | None:
    transformed = answer.get("transformedData")
    if not isinstance(transformed, dict):
        return None
    side = transformed.get("request" if subject.phase == BEFORE else "response")
    json = side.get("json") if isinstance(side, dict) else None
    return json if isinstance(json, dict) and json else None


def _secrets(url: str, headers: Mapping[str, str]) -> list[str]:
    """What the webhook's answer must not show: its header values, the URL's password, path
    segments and query (`shown` leaves them out of the URL reported)."""
    try:
        parts = urlsplit(url)
        pairs = parts.query.split("&")
        found = [parts.password or "", parts.query, *pairs,
                 *(pair.partition("=")[2] for pair in pairs), *parts.path.split("/"),
                 *headers.values()]
    except ValueError:
        found = [*headers.values()]
    found += [value.partition(" ")[2] for value in headers.values()]  # "Bearer <token>"
    return sorted({value for value in found if len(value) >= MIN_SECRET}, key=len, reverse=True)


def _redacted(answer: Any, secrets: list[str]) -> Any:
    """A copy of `answer` with every string in it (keys and values) redacted. Iterative: an
    answer nests as deep as its JSON parser allowed."""
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, secrets)
        if isinstance(value, dict):
            copy: dict[str, Any] = {}
            todo.append((value, copy))
            return copy
        if isinstance(value, list):
            items: list[Any] = []
            todo.append((value, items))
            return items
        return value

    todo: list[tuple[Any, Any]] = []
    root = clean(answer)
    while todo:
        source, copy = todo.pop()
        if isinstance(source, dict):
            for key, value in source.items():
                copy[redact(key, secrets)] = clean(value)
        else:
            copy.extend(clean(value) for value in source)
    return root


async def _scrubbed(answer: Any, secrets: list[str]) -> Any:
    """`answer` with every echo of `secrets` redacted, its shape kept."""
    if not secrets or answer is None:
        return answer
    if len(orjson.dumps(answer)) <= _REDACT_INLINE_CHARS:
        return _redacted(answer, secrets)
    return await asyncio.to_thread(_redacted, answer, secrets)


async def webhook(check: Check, subject: Subject, net: Outbound) -> CheckOutcome:
    url, timeout = check.params["webhookURL"], check.params["timeout"]
    headers = check.params.get("headers") or {}
    secrets = _secrets(url, headers)
    context = {"webhookUrl": shown(url), "requestContext": {"timeout": timeout}}
    try:
        answer = await net.post(url, _payload(subject), headers, timeout)
    except OutboundError as exc:
        data: dict[str, Any] = {"explanation": f"Webhook error: {exc.message}", **context}
        if exc.answer is not None:
            data["responseData"] = await _scrubbed(exc.answer, secrets)
        return failed(exc.message, data, exc.name)
    if not isinstance(answer, dict):
        return failed("the webhook's answer is not a JSON object",
                      {"explanation": "Webhook error: the answer is not a JSON object",
                       **context})
    verdict = answer.get("verdict") is True
    # The two parts that leave the check, redacted together (one size check, one thread).
    body, data = await _scrubbed([_replacement(answer, subject), answer.get("data")], secrets)
    return CheckOutcome(verdict, {
        "verdict": verdict,
        "explanation": "Webhook request succeeded" if verdict else "Webhook request failed",
        "responseData": data, **context},
        json=body, transformed=body is not None)


async def log(check: Check, subject: Subject, net: Outbound) -> CheckOutcome:
    url = check.params["logURL"]
    try:
        await net.post(url, _payload(subject), check.params.get("headers") or {},
                       check.params["timeout"], want_json=False)
    except OutboundError as exc:
        return failed(exc.message, None, exc.name)
    return CheckOutcome(True, {"message": f"Logged the request to {shown(url)}"})
