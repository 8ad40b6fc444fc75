"""The checks that call out: webhook (a verdict, maybe a rewritten body) and log.

Both post Portkey's hook context (request, response, provider, requestType, metadata and the
eventType) as JSON, never the request's headers (Portkey's log check sends them, API keys
included). A webhook answers `{verdict, data?, transformedData?}`; its
`transformedData.request.json` replaces the request before it is sent (before-request hooks
only), `transformedData.response.json` the answer (after-request hooks only).
"""

from __future__ import annotations

from typing import Any

from gateway.guardrails.checks import failed
from gateway.guardrails.event import Subject
from gateway.guardrails.hooks import BEFORE, Check
from gateway.guardrails.outbound import Outbound, OutboundError, shown
from gateway.guardrails.results import CheckOutcome


def _payload(subject: Subject) -> dict[str, Any]:
    return {**subject.context(), "eventType": subject.phase}


def _replacement(answer: dict[str, Any], subject: Subject) -> dict[str, Any] | None:
    transformed = answer.get("transformedData")
    if not isinstance(transformed, dict):
        return None
    side = transformed.get("request" if subject.phase == BEFORE else "response")
    json = side.get("json") if isinstance(side, dict) else None
    return json if isinstance(json, dict) and json else None


async def webhook(check: Check, subject: Subject, net: Outbound) -> CheckOutcome:
    url, timeout = check.params["webhookURL"], check.params["timeout"]
    context = {"webhookUrl": shown(url), "requestContext": {"timeout": timeout}}
    try:
        answer = await net.post(url, _payload(subject), check.params.get("headers") or {},
                                timeout)
    except OutboundError as exc:
        data: dict[str, Any] = {"explanation": f"Webhook error: {exc.message}", **context}
        if exc.answer is not None:
            data["responseData"] = exc.answer
        return failed(exc.message, data, exc.name)
    if not isinstance(answer, dict):
        return failed("the webhook's answer is not a JSON object",
                      {"explanation": "Webhook error: the answer is not a JSON object",
                       **context})
    verdict = answer.get("verdict") is True
    body = _replacement(answer, subject)
    return CheckOutcome(verdict, {
        "verdict": verdict,
        "explanation": "Webhook request succeeded" if verdict else "Webhook request failed",
        "responseData": answer.get("data"), **context},
        json=body, transformed=body is not None)


async def log(check: Check, subject: Subject, net: Outbound) -> CheckOutcome:
    url = check.params["logURL"]
    try:
        await net.post(url, _payload(subject), check.params.get("headers") or {},
                       check.params["timeout"], want_json=False)
    except OutboundError as exc:
        return failed(exc.message, None, exc.name)
    return CheckOutcome(True, {"message": f"Logged the request to {shown(url)}"})
