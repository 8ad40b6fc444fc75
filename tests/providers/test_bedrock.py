from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from providers.aws_signing import sign
from providers.base import ConfigurationError, Endpoint, SSEEvent, StreamError, StreamState, Target
from providers.bedrock import BedrockAdapter, converse_messages
from tests.providers.replay import response, stream_chunks, tool_calls_of

KEYS = {"aws-access-key-id": "AKID", "aws-secret-access-key": "SECRET", "aws-region": "eu-west-1"}
BODY = {"model": "anthropic.claude-3-haiku-20240307-v1:0",
        "messages": [{"role": "user", "content": "x"}]}


def test_sigv4_matches_the_aws_documentation_example() -> None:
    """The worked example of AWS's SigV4 guide (IAM ListUsers, 2015-08-30T12:36:00Z)."""
    now = datetime(2015, 8, 30, 12, 36, tzinfo=UTC).timestamp()
    headers = sign("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
                   {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, b"",
                   keys=("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
                   region="us-east-1", service="iam", now=now)
    assert headers["authorization"].endswith(
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    assert headers["x-amz-date"] == "20150830T123600Z"


def test_request_is_signed_for_its_region_and_escaped_model() -> None:
    target = Target("bedrock", options=KEYS, now=1_700_000_000)
    request = BedrockAdapter().build_request(Endpoint.CHAT, BODY, target, stream=True)
    assert request.url == ("https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
                           "anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
    assert "Credential=AKID/20231114/eu-west-1/bedrock/aws4_request" in \
        request.headers["authorization"]
    again = BedrockAdapter().build_request(Endpoint.CHAT, BODY, target, stream=True)
    assert again.headers == request.headers  # same clock, same signature


def test_signing_without_a_clock_or_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="clock"):
        BedrockAdapter().build_request(Endpoint.CHAT, BODY, Target("bedrock", options=KEYS),
                                       stream=False)
    with pytest.raises(ConfigurationError, match="aws-secret-access-key"):
        BedrockAdapter().build_request(Endpoint.CHAT, BODY, Target(
            "bedrock", options={"aws-access-key-id": "AKID"}, now=1.0), stream=False)


def test_messages_alternate_and_cache_control_becomes_a_cache_point() -> None:
    out = converse_messages([
        {"role": "system", "content": [{"type": "text", "text": "s",
                                        "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert out["system"] == [{"text": "s"}, {"cachePoint": {"type": "default"}}]
    assert out["messages"] == [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]


def test_http_images_are_refused_but_s3_is_sent() -> None:
    def image(url: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    with pytest.raises(ConfigurationError, match="cannot fetch image URLs"):
        converse_messages(image("https://example.com/a.png"))
    assert converse_messages(image("s3://bucket/a.png"))["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"s3Location": {"uri": "s3://bucket/a.png"}}}}]


def test_tool_choice_none_sends_no_tool_choice() -> None:
    request = BedrockAdapter().build_request(Endpoint.CHAT, BODY | {"tool_choice": "none"},
                                             Target("bedrock", api_key="k"), stream=False)
    assert "toolConfig" not in orjson.loads(request.body or b"")


def test_stream_tool_indices_and_usage_match_the_response() -> None:
    chunks, state = stream_chunks("bedrock", "tools")
    assert sorted(tool_calls_of(chunks)) == [0, 1]
    assert state.usage == response("bedrock", "tools")["usage"]
    chunks, state = stream_chunks("bedrock", "text")
    assert state.usage["prompt_tokens"] == 2060
    assert state.usage["prompt_tokens_details"] == {"cached_tokens": 2048}


@pytest.mark.parametrize(("kind", "status"), [
    ("throttlingException", 429), ("validationException", 400),
    ("serviceUnavailableException", 503), ("somethingNewException", 500), ("error", 500)])
def test_exception_events_raise_with_a_status(kind: str, status: int) -> None:
    with pytest.raises(StreamError) as info:
        BedrockAdapter().translate_event(Endpoint.CHAT, SSEEvent(kind, '{"message":"m"}'),
                                         StreamState())
    assert info.value.error.status == status


def test_stream_without_metadata_is_truncated() -> None:
    with pytest.raises(StreamError, match="metadata"):
        BedrockAdapter().end_stream(Endpoint.CHAT, StreamState())


def test_titan_embeds_one_text_and_cohere_a_batch() -> None:
    adapter, target = BedrockAdapter(), Target("bedrock", api_key="k")
    with pytest.raises(ConfigurationError, match="one input per request"):
        adapter.build_request(Endpoint.EMBEDDINGS, {"model": "amazon.titan-embed-text-v2:0",
                                                    "input": ["a", "b"]}, target, stream=False)
    request = adapter.build_request(Endpoint.EMBEDDINGS, {"model": "us.cohere.embed-v4:0",
                                                          "input": ["a", "b"]}, target,
                                    stream=False)
    assert request.url.endswith("/model/us.cohere.embed-v4%3A0/invoke")
    assert orjson.loads(request.body or b"")["texts"] == ["a", "b"]
