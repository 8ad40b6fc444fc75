"""Every recorded provider fixture, through a real gateway, a real loopback upstream serving
the fixture's bytes, and the OpenAI SDK.

For each case under tests/fixtures/<slug>/<case>/ (case.json says what it holds):
- `expect`: the SDK must rebuild the same content, tool calls, finish reason and usage from
  the non-stream response (response.json) and from the stream (stream.sse / stream.bin), and
  the gateway must have sent upstream_request.json to `path` / `stream_path`;
- `error`: error.json with that status becomes an SDK error with the slug-prefixed message;
- `expect_embeddings`: the SDK reads the vectors and usage of response.json;
- `stream_error`: an error event in a 200 stream surfaces as an SDK error: a status before
  the first chunk (so fallback can still happen), an error event after it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.gateway.conftest import OPTIONS, SLUGS, client
from tests.support.fixture_upstream import FixtureUpstream, Reply

FIXTURES = Path(__file__).parents[1] / "fixtures"
STREAM_TYPES = {"stream.sse": "text/event-stream",
                "stream.bin": "application/vnd.amazon.eventstream"}


def cases() -> list[Any]:
    found = []
    for slug in SLUGS:
        for folder in sorted((FIXTURES / slug).iterdir()):
            found.append(pytest.param(slug, folder, id=f"{slug}/{folder.name}"))
    return found


def stream_reply(folder: Path) -> Reply:
    name = next(n for n in STREAM_TYPES if (folder / n).exists())
    return Reply((folder / name).read_bytes(), content_type=STREAM_TYPES[name], stream=True)


def from_completion(completion: Any) -> dict[str, Any]:
    choice = completion.choices[0]
    calls = choice.message.tool_calls or []
    return {"content": choice.message.content or "",
            "tool_calls": [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
                           for c in calls],
            "ids": [c.id for c in calls], "finish_reason": choice.finish_reason,
            "usage": _usage(completion.usage)}


def from_stream(chunks: list[Any]) -> dict[str, Any]:
    """What a client rebuilds from the chunks, the way the OpenAI docs say to accumulate them."""
    content, calls, finish, usage = "", {}, None, None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = _usage(chunk.usage)
        for choice in chunk.choices:
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    ordered = [calls[i] for i in sorted(calls)]
    return {"content": content,
            "tool_calls": [{"name": c["name"], "arguments": json.loads(c["arguments"])}
                           for c in ordered],
            "ids": [c["id"] for c in ordered], "finish_reason": finish, "usage": usage}


def _usage(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    details = usage.prompt_tokens_details
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": details.cached_tokens if details else 0}


def _without_stream_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


@pytest.mark.parametrize(("slug", "folder"), cases())
def test_fixture(slug: str, folder: Path, gateway_url: str, fake: FixtureUpstream) -> None:
    case = json.loads((folder / "case.json").read_text())
    sdk = client(gateway_url, slug, case.get("headers"))
    if "expect" in case:
        _check_success(case, folder, sdk, fake)
    elif "expect_embeddings" in case:
        _check_embeddings(case, folder, sdk, fake)
    elif "error" in case:
        _check_error(case, folder, sdk, fake)
    else:
        _check_stream_error(case, folder, sdk, fake)


def _check_success(case: dict[str, Any], folder: Path, sdk: openai.OpenAI,
                   fake: FixtureUpstream) -> None:
    expected_body = json.loads((folder / "upstream_request.json").read_text())
    fake.reply = Reply((folder / "response.json").read_bytes())
    whole = from_completion(sdk.chat.completions.create(**case["request"]))
    sent = fake.requests[-1]
    assert sent.json == expected_body
    assert sent.path + (f"?{sent.query}" if sent.query else "") == case["path"]

    fake.reply = stream_reply(folder)
    streamed = from_stream(list(sdk.chat.completions.create(
        **case["request"], stream=True, stream_options={"include_usage": True})))
    sent = fake.requests[-1]
    assert _without_stream_fields(sent.json) == _without_stream_fields(expected_body)
    assert sent.path + (f"?{sent.query}" if sent.query else "") == case["stream_path"]

    ids = whole.pop("ids"), streamed.pop("ids")
    assert whole == case["expect"]
    assert streamed == case["expect"]
    assert all(ids[0]) and all(ids[1])


def _check_embeddings(case: dict[str, Any], folder: Path, sdk: openai.OpenAI,
                      fake: FixtureUpstream) -> None:
    expected = case["expect_embeddings"]
    fake.reply = Reply((folder / "response.json").read_bytes())
    # The SDK asks for base64 unless told otherwise; both forms must decode to the vectors.
    for encoding in ({}, {"encoding_format": "float"}):
        result = sdk.embeddings.create(**case["embed_request"], **encoding)
        assert [pytest.approx(d.embedding, rel=1e-6) for d in result.data] == expected["vectors"]
        assert result.usage.prompt_tokens == expected["prompt_tokens"]
        sent = fake.requests[-1]
        assert sent.json == json.loads((folder / "upstream_request.json").read_text())
        assert sent.path == case["path"]


def _check_error(case: dict[str, Any], folder: Path, sdk: openai.OpenAI,
                 fake: FixtureUpstream) -> None:
    expected = case["error"]
    fake.reply = Reply((folder / "error.json").read_bytes(), status=expected["status"])
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as info:
            result = sdk.chat.completions.create(**case["request"], stream=stream)
            list(result) if stream else None  # type: ignore[call-overload]
        assert info.value.status_code == expected["status"]
        assert info.value.body["message"] == expected["message"]


def _check_stream_error(case: dict[str, Any], folder: Path, sdk: openai.OpenAI,
                        fake: FixtureUpstream) -> None:
    expected = case["stream_error"]
    fake.reply = stream_reply(folder)
    if expected["mid_stream"]:
        stream = sdk.chat.completions.create(**case["request"], stream=True)
        received = []
        with pytest.raises(openai.APIError) as info:
            for chunk in stream:
                received.append(chunk)
        assert received, "the error came after the first chunk"
        assert info.value.message == expected["message"]
    else:
        with pytest.raises(openai.APIStatusError) as status_info:
            list(sdk.chat.completions.create(**case["request"], stream=True))
        assert status_info.value.status_code == expected["status"]
        assert status_info.value.body["message"] == expected["message"]


def test_stream_hides_usage_unless_asked(gateway_url: str, fake: FixtureUpstream) -> None:
    folder = FIXTURES / "anthropic" / "text"
    case = json.loads((folder / "case.json").read_text())
    fake.reply = stream_reply(folder)
    chunks = list(client(gateway_url, "anthropic").chat.completions.create(
        **case["request"], stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("slug", ["google", "vertex-ai", "bedrock", "anthropic", "cohere"])
def test_raw_stream_ends_with_done(slug: str, gateway_url: str, fake: FixtureUpstream) -> None:
    """Gemini has no end marker of its own (Portkey never sent [DONE] for it)."""
    folder = FIXTURES / slug / ("gemini_text" if slug == "vertex-ai" else "text")
    case = json.loads((folder / "case.json").read_text())
    fake.reply = stream_reply(folder)
    headers = {"x-portkey-provider": slug, "authorization": "Bearer k"} | {
        f"x-portkey-{k}": v for k, v in OPTIONS.get(slug, {}).items()}
    response = httpx.post(f"{gateway_url}/v1/chat/completions", headers=headers,
                          json=case["request"] | {"stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    assert response.text.count("data: [DONE]") == 1
