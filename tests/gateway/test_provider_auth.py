"""What each translating provider receives as credentials and options, through the gateway:
SigV4 signatures botocore accepts, Vertex tokens minted from a service account on a loopback
token endpoint, Azure's api-key or Entra token, and provider headers from x-portkey-*."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import openai
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from providers.aws_signing import sign
from tests.gateway.conftest import OPTIONS, client
from tests.support.fixture_upstream import FixtureUpstream, Reply, Seen

FIXTURES = Path(__file__).parents[1] / "fixtures"
MESSAGES = [{"role": "user", "content": "Name the capital of France."}]


def reply(slug: str, case: str = "text") -> Reply:
    return Reply((FIXTURES / slug / case / "response.json").read_bytes())


def test_anthropic_headers(gateway_url: str, fake: FixtureUpstream) -> None:
    fake.reply = reply("anthropic")
    client(gateway_url, "anthropic").chat.completions.create(model="claude", messages=MESSAGES)
    client(gateway_url, "anthropic", {"anthropic-version": "2024-01-01",
                                      "anthropic-beta": "prompt-caching-2024-07-31"}
           ).chat.completions.create(model="claude", messages=MESSAGES)
    default, chosen = fake.requests
    assert default.headers["x-api-key"] == "sk-provider-key"
    assert default.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in default.headers and "authorization" not in default.headers
    assert chosen.headers["anthropic-version"] == "2024-01-01"
    assert chosen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert not any(name.startswith("x-portkey") for name in chosen.headers)


def test_google_key_travels_in_a_header_not_the_url(gateway_url: str,
                                                    fake: FixtureUpstream) -> None:
    fake.reply = reply("google")
    client(gateway_url, "google").chat.completions.create(model="gemini-2.5-flash",
                                                          messages=MESSAGES)
    (seen,) = fake.requests
    assert seen.headers["x-goog-api-key"] == "sk-provider-key"
    assert "sk-provider-key" not in seen.url


def test_cohere_bearer(gateway_url: str, fake: FixtureUpstream) -> None:
    fake.reply = reply("cohere")
    client(gateway_url, "cohere").chat.completions.create(model="command-a-03-2025",
                                                          messages=MESSAGES)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-provider-key"


def test_azure_api_key_entra_token_and_v1_urls(gateway_url: str, fake: FixtureUpstream) -> None:
    fake.reply = reply("azure-openai")
    client(gateway_url, "azure-openai").chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client(gateway_url, "azure-openai", {"azure-ad-token": "eyJ0eXAi.entra.token"}
           ).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client(gateway_url, "azure-openai", {"azure-api-version": "v1"}, options=False
           ).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    key, entra, v1 = fake.requests
    assert key.headers["api-key"] == "sk-provider-key" and "authorization" not in key.headers
    assert entra.headers["authorization"] == "Bearer eyJ0eXAi.entra.token"
    assert "api-key" not in entra.headers
    assert v1.path == "/azure-openai/openai/v1/chat/completions" and v1.query == ""


def test_azure_deployment_defaults_to_the_model(gateway_url: str, fake: FixtureUpstream) -> None:
    fake.reply = reply("azure-openai")
    client(gateway_url, "azure-openai", options=False).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES)
    (seen,) = fake.requests
    assert seen.path == "/azure-openai/openai/deployments/gpt-4o-mini/chat/completions"
    assert seen.query == "api-version=2024-10-21"


def _verify_sigv4(seen: Seen, keys: tuple[str, str, str | None], region: str) -> None:
    """Recompute the signature with botocore from what the upstream actually received."""
    stamp = datetime.strptime(seen.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    signed = seen.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "content-type"} <= set(signed)
    headers = {name: seen.headers[name] for name in signed if name != "host"}
    url = f"http://{seen.headers['host']}{seen.path}"  # the path exactly as received
    expected = sign("POST", url, headers, seen.raw, keys=keys, region=region,
                    service="bedrock", now=stamp.timestamp())
    assert seen.headers["authorization"] == expected["authorization"]
    assert f"/{region}/bedrock/aws4_request" in seen.headers["authorization"]


def test_bedrock_requests_are_sigv4_signed(gateway_url: str, fake: FixtureUpstream) -> None:
    fake.reply = reply("bedrock")
    token = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"
    client(gateway_url, "bedrock").chat.completions.create(
        model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", messages=MESSAGES)
    client(gateway_url, "bedrock", {"aws-session-token": token, "aws-region": "eu-central-1"}
           ).chat.completions.create(model="amazon.nova-pro-v1:0", messages=MESSAGES)
    plain, session = fake.requests
    keys = (OPTIONS["bedrock"]["aws-access-key-id"], OPTIONS["bedrock"]["aws-secret-access-key"])
    _verify_sigv4(plain, (*keys, None), "us-west-2")
    assert "x-amz-security-token" not in plain.headers
    assert session.headers["x-amz-security-token"] == token
    _verify_sigv4(session, (*keys, token), "eu-central-1")
    assert not any(n.startswith("x-portkey") for n in plain.headers)


def test_bedrock_secret_may_come_as_the_provider_key(gateway_url: str,
                                                     fake: FixtureUpstream) -> None:
    fake.reply = reply("bedrock")
    key_id = OPTIONS["bedrock"]["aws-access-key-id"]
    client(gateway_url, "bedrock", {"aws-access-key-id": key_id}, options=False,
           api_key="the-secret").chat.completions.create(model="m", messages=MESSAGES)
    _verify_sigv4(fake.requests[0], (key_id, "the-secret", None), "us-east-1")


def test_bedrock_api_key_is_a_bearer_token(gateway_url: str, fake: FixtureUpstream) -> None:
    fake.reply = reply("bedrock")
    client(gateway_url, "bedrock", options=False, api_key="ABSKQmVkcm9ja0FQSUtleQ").\
        chat.completions.create(model="m", messages=MESSAGES)
    (seen,) = fake.requests
    assert seen.headers["authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleQ"
    assert "x-amz-date" not in seen.headers


def _service_account(token_uri: str) -> tuple[str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = {"type": "service_account", "project_id": "sa-project", "private_key_id": "k1",
               "private_key": pem, "client_email": "gw@sa-project.iam.gserviceaccount.com",
               "token_uri": token_uri}
    return json.dumps(account), key.public_key()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_vertex_service_account_token_is_minted_once_and_used(
        gateway_url: str, fake: FixtureUpstream, upstream) -> None:  # type: ignore[no-untyped-def]
    server = upstream[1]
    account, public_key = _service_account(f"{server.url}/oauth/token")
    fake.routes["/oauth/token"] = Reply(b'{"access_token":"ya29.minted","expires_in":3599,'
                                        b'"token_type":"Bearer"}')
    fake.reply = reply("vertex-ai", "gemini_text")
    sdk = client(gateway_url, "vertex-ai", {"vertex-service-account-json": account},
                 options=False, api_key="unused")
    for _ in range(2):
        sdk.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES)
    token_call, first, second = fake.requests
    assert token_call.path == "/oauth/token"
    form = dict(p.split("=", 1) for p in token_call.raw.decode().split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    header, claims, signature = form["assertion"].split(".")
    public_key.verify(_b64decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(),
                      hashes.SHA256())
    assert json.loads(_b64decode(claims))["aud"] == f"{server.url}/oauth/token"
    assert json.loads(_b64decode(header)) == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    for seen in (first, second):  # the project came from the service account
        assert seen.headers["authorization"] == "Bearer ya29.minted"
        assert seen.path.startswith("/vertex-ai/v1/projects/sa-project/locations/us-central1/")


def test_vertex_rejected_service_account_is_401(gateway_url: str, fake: FixtureUpstream,
                                                upstream) -> None:  # type: ignore[no-untyped-def]
    account, _ = _service_account(f"{upstream[1].url}/oauth/denied")
    fake.routes["/oauth/denied"] = Reply(b'{"error":"invalid_grant","error_description":'
                                         b'"Invalid JWT Signature."}', status=400)
    with pytest.raises(openai.AuthenticationError) as info:
        client(gateway_url, "vertex-ai", {"vertex-service-account-json": account},
               options=False).chat.completions.create(model="gemini-2.5-flash",
                                                      messages=MESSAGES)
    assert "Invalid JWT Signature." in info.value.body["message"]
    assert "PRIVATE KEY" not in json.dumps(info.value.body)


def test_vertex_malformed_service_account_is_400(gateway_url: str,
                                                 fake: FixtureUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway_url, "vertex-ai", {"vertex-service-account-json": "{not json"},
               options=False).chat.completions.create(model="gemini-2.5-flash",
                                                      messages=MESSAGES)
    assert info.value.body["param"] == "x-portkey-vertex-service-account-json"
    assert fake.requests == []


def test_missing_options_are_400_naming_the_header(gateway_url: str,
                                                   fake: FixtureUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway_url, "vertex-ai", options=False).chat.completions.create(
            model="gemini-2.5-flash", messages=MESSAGES)
    assert "x-portkey-vertex-project-id" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway_url, "anthropic").chat.completions.create(
            model="claude", messages=[{"role": "wizard", "content": "hi"}])
    assert "wizard" in info.value.body["message"]
    assert fake.requests == []


def test_truncated_stream_is_an_error_not_a_clean_end(gateway_url: str,
                                                      fake: FixtureUpstream) -> None:
    """Portkey #1797: a stream cut before message_stop must not look like success."""
    whole = (FIXTURES / "anthropic" / "text" / "stream.sse").read_bytes()
    fake.reply = Reply(whole[:whole.index(b"event: message_delta")], stream=True,
                       content_type="text/event-stream")
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client(gateway_url, "anthropic").chat.completions.create(
                model="claude", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Paris."
    assert "ended before message_stop" in info.value.message


def test_openai_format_stream_cut_before_its_finish_is_malformed(gateway_url: str,
                                                                 fake: FixtureUpstream) -> None:
    """OpenAI's format has no end event but `[DONE]` (or a finish_reason): without either the
    adapter's end_stream says the stream was cut off, and the gateway answers 502."""
    whole = (FIXTURES / "azure-openai" / "text" / "stream.sse").read_bytes()
    fake.reply = Reply(whole[:whole.index(b'"finish_reason":"stop"')].rpartition(b"data:")[0],
                       stream=True, content_type="text/event-stream")
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client(gateway_url, "azure-openai").chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Paris."
    assert info.value.message == "azure-openai ended the stream before it was complete"
    assert info.value.code == "upstream_malformed"


@pytest.mark.parametrize("slug", ["anthropic", "google", "vertex-ai", "cohere", "bedrock"])
@pytest.mark.parametrize("body", [
    {"messages": "hello"},
    {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"function": {}}]},
    {"messages": [{"role": "assistant", "tool_calls": "x"}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
])
def test_untranslatable_bodies_are_400_not_500(gateway_url: str, fake: FixtureUpstream,
                                               slug: str, body: dict) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway_url, slug).chat.completions.create(model="m", **body)
    assert info.value.body["type"] == "invalid_request_error"
    assert fake.requests == []


def test_vertex_token_near_expiry_is_minted_again(gateway_url: str, fake: FixtureUpstream,
                                                  upstream) -> None:  # type: ignore[no-untyped-def]
    account, _ = _service_account(f"{upstream[1].url}/oauth/short")
    fake.routes["/oauth/short"] = Reply(b'{"access_token":"ya29.short","expires_in":60}')
    fake.reply = reply("vertex-ai", "gemini_text")
    sdk = client(gateway_url, "vertex-ai", {"vertex-service-account-json": account},
                 options=False)
    for _ in range(2):
        sdk.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES)
    assert [r.path for r in fake.requests].count("/oauth/short") == 2


@pytest.mark.parametrize(("slug", "path", "expected", "auth"), [
    # (/v1/messages and /v1/messages/count_tokens are routes of their own: dialects/)
    ("anthropic", "messages/batches", "/anthropic/v1/messages/batches", "x-api-key"),
    ("google", "models/gemini-2.5-flash:countTokens",
     "/google/v1beta/models/gemini-2.5-flash:countTokens", "x-goog-api-key"),
    ("cohere", "rerank", "/cohere/v2/rerank", "authorization"),
    ("azure-openai", "deployments/gpt-4o-prod/audio/speech",
     "/azure-openai/openai/deployments/gpt-4o-prod/audio/speech", "api-key"),
])
def test_passthrough_reaches_the_provider_api_root(gateway_url: str, fake: FixtureUpstream,
                                                   slug: str, path: str, expected: str,
                                                   auth: str) -> None:
    fake.reply = Reply(b'{"ok": true}')
    sdk = client(gateway_url, slug)
    answer = sdk.post(f"/{path}", body={"x": 1}, cast_to=object)
    assert answer == {"ok": True}
    (seen,) = fake.requests
    assert seen.path == expected
    assert "sk-provider-key" in seen.headers[auth]
    assert seen.json == {"x": 1}
