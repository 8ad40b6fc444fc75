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
from gateway.redact import MIN_SECRET, REDACTED, redact

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
    """What the webhook's answer must not show: its header values, the URL's password and
    query (`shown` leaves them out of the URL reported)."""
    try:
        parts = urlsplit(url)
        found = [parts.password or "", parts.query, *headers.values()]
    except ValueError:
        found = [*headers.values()]
    found += [value.partition(" ")[2] for value in headers.values()]  # "Bearer <token>"
    return sorted({value for value in found if len(value) >= MIN_SECRET}, key=len, reverse=True)


async def _scrubbed(answer: Any, secrets: list[str]) -> Any:
    """`answer` with every echo of `secrets` redacted (in its keys and values alike)."""
    if not secrets or answer is None:
        return answer
    text = orjson.dumps(answer).decode()
    if len(text) <= _REDACT_INLINE_CHARS:
        clean = redact(text, secrets)
    else:
        clean = await asyncio.to_thread(redact, text, secrets)
    if clean == text:
        return answer
    try:
        return orjson.loads(clean)
    except orjson.JSONDecodeError:  # an echo that took JSON punctuation with it
        return REDACTED


async def webhook(check: Check, subject: Subject, net: Outbound) -> CheckOutcome:
    url, timeout = check.params["webhookURL"], check.params["timeout"]
    headers = check.params.get("headers") or {}
    context = {"webhookUrl": shown(url), "requestContext": {"timeout": timeout}}
    try:
        answer = await net.post(url, _payload(subject), headers, timeout)
    except OutboundError as exc:
        data: dict[str, Any] = {"explanation": f"Webhook error: {exc.message}", **context}
        if exc.answer is not None:
            data["responseData"] = await _scrubbed(exc.answer, _secrets(url, headers))
        return failed(exc.message, data, exc.name)
    if not isinstance(answer, dict):
        return failed("the webhook's answer is not a JSON object",
                      {"explanation": "Webhook error: the answer is not a JSON object",
                       **context})
    verdict = answer.get("verdict") is True
    body = await _scrubbed(_replacement(answer, subject), _secrets(url, headers))
    return CheckOutcome(verdict, {
        "verdict": verdict,
        "explanation": "Webhook request succeeded" if verdict else "Webhook request failed",
        "responseData": await _scrubbed(answer.get("data"), _secrets(url, headers)),
        **context},
        json=body, transformed=body is not None)


async def log(check: Check, subject: Subject, net: Outbound) -> CheckOutcome:
    url = check.params["logURL"]
    try:
        await net.post(url, _payload(subject), check.params.get("headers") or {},
                       check.params["timeout"], want_json=False)
    except OutboundError as exc:
        return failed(exc.message, None, exc.name)
    return CheckOutcome(True, {"message": f"Logged the request to {shown(url)}"})
