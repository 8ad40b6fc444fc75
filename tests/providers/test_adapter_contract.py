"""Every registered adapter has each member the `Adapter` protocol declares, of its type.

The gateway reads capabilities (`rewrites_responses`, `service_account_option`, `end_stream`)
as plain members, so an adapter missing one must fail here rather than at a request.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pydantic
import pytest

from providers import REGISTRY
from providers.base import (
    Adapter,
    Endpoint,
    NoNativeDialects,
    ProviderError,
    SSEEvent,
    StreamCutOff,
    StreamState,
    Target,
    UpstreamRequest,
)

HINTS = typing.get_type_hints(Adapter)
METHODS = sorted(name for name, value in vars(Adapter).items()
                 if inspect.isfunction(value) and not name.startswith("_"))


def _shape(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def contract_breaks(adapter: object) -> list[str]:
    """What `adapter` lacks of the protocol: missing members, wrong types, other signatures."""
    breaks = []
    for name, hint in HINTS.items():
        if not hasattr(adapter, name):
            breaks.append(f"{name}: missing")
            continue
        try:
            pydantic.TypeAdapter(hint).validate_python(getattr(adapter, name), strict=True)
        except pydantic.ValidationError:
            breaks.append(f"{name}: {getattr(adapter, name)!r} is not {hint}")
    for name in METHODS:
        method = getattr(adapter, name, None)
        if not callable(method):
            breaks.append(f"{name}(): missing")
            continue
        declared = _shape(inspect.signature(getattr(Adapter, name)))[1:]  # less `self`
        if _shape(inspect.signature(method)) != declared:
            breaks.append(f"{name}(): signature {inspect.signature(method)}")
    return breaks


def test_the_protocol_declares_the_capabilities_the_gateway_reads() -> None:
    assert {"rewrites_responses", "service_account_option", "stream_format"} <= set(HINTS)
    assert {"end_stream", "translate_event", "build_request"} <= set(METHODS)


@pytest.mark.parametrize("slug", sorted(REGISTRY))
def test_every_adapter_satisfies_the_protocol(slug: str) -> None:
    adapter = REGISTRY[slug]
    assert contract_breaks(adapter) == []
    assert adapter.slug == slug


class _Incomplete(NoNativeDialects):
    """An adapter written before `end_stream` and `service_account_option` were declared."""

    slug = "incomplete"
    stream_format = "sse"
    injects_stream_usage = True
    header_options: tuple[str, ...] = ()
    rewrites_responses = 1  # not a bool

    def build_request(self, endpoint: Endpoint, body: Any, target: Target, *,
                      stream: bool) -> UpstreamRequest:
        raise NotImplementedError

    def proxy_url(self, path: str, target: Target) -> str:
        raise NotImplementedError

    def auth_headers(self, target: Target) -> dict[str, str]:
        raise NotImplementedError

    def translate_response(self, endpoint: Endpoint, body: dict[str, Any], *, now: int,
                           request_id: str = "", model: str = "") -> dict[str, Any]:
        raise NotImplementedError

    def translate_event(self, endpoint: Endpoint, event: SSEEvent,
                        state: StreamState) -> list[dict[str, Any]]:
        raise NotImplementedError

    def translate_error(self, status: int, body: Any, extra: int) -> ProviderError:
        raise NotImplementedError


@pytest.mark.parametrize("slug", sorted(REGISTRY))
def test_native_dialects_are_declared_not_probed(slug: str) -> None:
    """An adapter takes a dialect natively only if it declares it; Messages goes natively to
    Anthropic, and to Claude (not Gemini, not Nova) on Vertex and Bedrock."""
    adapter = REGISTRY[slug]
    for dialect in ("messages", "responses", "chat"):
        if dialect not in adapter.native_dialects:
            assert not adapter.takes_native(dialect, dialect, "claude-sonnet-4-5")
    assert ("messages" in adapter.native_dialects) == (slug in ("anthropic", "vertex-ai",
                                                                "bedrock"))
    assert ("responses" in adapter.native_dialects) == (slug in ("openai", "azure-openai"))
    if "responses" in adapter.native_dialects:
        assert adapter.takes_native("responses", "responses", "gpt-5")
        assert not adapter.takes_native("responses", "responses/resp_1", "gpt-5")
    if slug == "vertex-ai":
        assert adapter.takes_native("messages", "messages", "claude-sonnet-4-5@20250929")
        assert not adapter.takes_native("messages", "messages", "gemini-2.5-flash")
        assert not adapter.takes_native("messages", "messages/count_tokens", "claude-opus-4")
    if slug == "bedrock":
        assert adapter.takes_native("messages", "messages",
                                    "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
        assert not adapter.takes_native("messages", "messages", "amazon.nova-pro-v1:0")


def test_an_incomplete_adapter_is_caught() -> None:
    breaks = contract_breaks(_Incomplete())
    assert [b.split(":")[0] for b in breaks] == [
        "rewrites_responses", "service_account_option", "end_stream()", "translate_error()"]


@pytest.mark.parametrize("slug", ["openai", "vllm", "azure-openai"])
def test_an_openai_format_stream_ends_with_done_or_a_finish_reason(slug: str) -> None:
    adapter = REGISTRY[slug]
    assert adapter.end_stream(Endpoint.CHAT, StreamState(completed=True)) == []
    assert adapter.end_stream(Endpoint.CHAT, StreamState(finish_reason="stop")) == []
    with pytest.raises(StreamCutOff):
        adapter.end_stream(Endpoint.CHAT, StreamState())
