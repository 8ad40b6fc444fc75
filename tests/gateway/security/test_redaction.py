"""Attack 7: an upstream that echoes the key in its error text leaks nothing.

A real gateway process, a loopback upstream that quotes the Authorization and x-api-key
headers and the request body in its errors (a 401 / 400 JSON body, and an error event in
the middle of a stream), and an OTLP collector. The planted secrets (a provider key, a
virtual key's stored secret, the gateway API key, the bundled backend's key, the admin token)
must appear nowhere: not in the client's answer, the usage row, the gateway's log, the spans.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.contracts.identity import VirtualKey
from gateway.contracts.plan import Leaf
from gateway.errors import AuthenticationFailed
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.parse import parse_request
from gateway.security.redaction import MAX_ERROR_TEXT, MIN_ECHO, REDACTED, Secrets, redact
from gateway.security.service_accounts import ServiceAccount, ServiceAccountTokens, _cache_key
from gateway.settings import Settings
from providers.base import Endpoint
from tests.gateway.test_otel import Collector
from tests.support.databases import ADMIN_TOKEN, admin_client
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.servers import ThreadedServer
from tests.support.waiting import wait_until

PROVIDER_KEY = "sk-provider-" + "P" * 8 + os.urandom(8).hex()
VK_SECRET = "sk-virtual-" + "V" * 8 + os.urandom(8).hex()
BACKEND_KEY = "backend-key-" + os.urandom(10).hex()


SEEN: list[str] = []  # what the upstream was sent, to show each secret was there to echo


def _echo(request: Request, raw: bytes) -> str:
    SEEN.append(str(request.headers) + raw.decode())
    return (f"bad key: Authorization={request.headers.get('authorization')} "
            f"x-api-key={request.headers.get('x-api-key')} body={raw.decode()}")


async def _chat(request: Request) -> Response:
    raw = await request.body()
    if not orjson.loads(raw).get("stream"):
        return JSONResponse({"error": {"message": _echo(request, raw), "type": "auth_error",
                                       "code": "invalid_api_key"}}, status_code=401)
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}

    async def events() -> Iterator[bytes]:
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        error = {"error": {"message": _echo(request, raw), "type": "server_error"}}
        yield b"data: " + orjson.dumps(error) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
    with ThreadedServer(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    receiver = Collector()
    with ThreadedServer(receiver.app()) as server:
        receiver.url = server.url  # type: ignore[attr-defined]
        yield receiver


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, echo_url: str,
            collector: Collector) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("redaction")
    env = gateway_env(
        tmp, echo_url, GATEWAY_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
        GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN, GATEWAY_AUTO_MIGRATE="true",
        GATEWAY_VLLM_API_KEY=BACKEND_KEY, GATEWAY_LOG_LEVEL="debug",
        GATEWAY_OTLP_ENDPOINT=collector.url, GATEWAY_OTLP_EXPORT_INTERVAL_MS="50")
    process = GatewayProcess(env, cwd=tmp).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keys(gateway: GatewayProcess) -> dict[str, str]:
    with admin_client(gateway) as admin:  # type: ignore[arg-type]
        vk = admin.post("/admin/virtual-keys", json={
            "name": "echoed", "provider": "openai", "key": VK_SECRET})
        api = admin.post("/admin/api-keys", json={"name": "echoed"})
    assert vk.status_code == 201, vk.text
    assert api.status_code == 201, api.text
    return {"vk": vk.json()["slug"], "api": api.json()["key"]}


def _send(gateway: GatewayProcess, api_key: str, headers: dict[str, str],
          stream: bool = False) -> httpx.Response:
    # The client pastes its gateway key into the prompt: the upstream echoes the body.
    body = {"model": "m", "stream": stream,
            "messages": [{"role": "user", "content": f"my key is {api_key}"}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30,
                      headers={"x-portkey-api-key": api_key, **headers})


CASES = {
    "provider key": ({"x-portkey-provider": "openai",
                      "authorization": f"Bearer {PROVIDER_KEY}"}, PROVIDER_KEY),
    "provider x-api-key": ({"x-portkey-provider": "openai", "x-api-key": PROVIDER_KEY,
                            "x-portkey-forward-headers": "x-api-key"}, PROVIDER_KEY),
    "virtual key": ({"x-portkey-virtual-key": "{vk}"}, VK_SECRET),
    "backend key": ({"x-portkey-provider": "vllm"}, BACKEND_KEY),
}


def _secrets(keys: dict[str, str]) -> list[str]:
    return [PROVIDER_KEY, VK_SECRET, BACKEND_KEY, keys["api"], ADMIN_TOKEN]


def _assert_clean(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret leaked into {where}"
        assert secret[4:20] not in text, f"part of a secret leaked into {where}"


@pytest.mark.parametrize("stream", [False, True], ids=["error-status", "mid-stream-error"])
@pytest.mark.parametrize("case", list(CASES))
def test_echoed_secrets_reach_no_one(gateway: GatewayProcess, keys: dict[str, str],
                                     collector: Collector, case: str, stream: bool) -> None:
    headers, planted = CASES[case]
    headers = {k: v.format(vk=keys["vk"]) for k, v in headers.items()}
    response = _send(gateway, keys["api"], headers, stream)
    secrets = _secrets(keys)

    # The upstream's complaint still reaches the client, minus the secrets.
    assert response.status_code == (200 if stream else 401), response.text
    assert "bad key" in response.text and REDACTED in response.text
    _assert_clean(response.text, secrets, "the client's answer")

    request_id = response.headers["x-portkey-request-id"]
    with admin_client(gateway) as admin:  # type: ignore[arg-type]
        def row() -> httpx.Response:
            return admin.get(f"/admin/logs/{request_id}")
        assert wait_until(lambda: row().status_code == 200)
        logged = row().json()
    assert REDACTED in (logged.get("error_message") or ""), logged
    _assert_clean(orjson.dumps(logged).decode(), secrets, "the usage row")

    assert wait_until(lambda: any(_mentions(span, request_id) for span in collector.spans))
    _assert_clean(str(list(collector.spans)), secrets, "the trace spans")
    _assert_clean(gateway.output(), secrets, "the gateway's log")
    assert planted in SEEN[-1], "the upstream was never sent the secret"


def _mentions(span: object, request_id: str) -> bool:
    return request_id in str(span)


def test_attempt_errors_in_spans_are_redacted(gateway: GatewayProcess, keys: dict[str, str],
                                              collector: Collector) -> None:
    """The attempt span's status carries the upstream's message: redacted, but present."""
    response = _send(gateway, keys["api"], {"x-portkey-virtual-key": keys["vk"]})
    assert response.status_code == 401
    trace_id = response.headers["x-portkey-trace-id"]

    def attempt_statuses() -> list[str]:
        return [span.status.message for span in list(collector.spans)
                if span.name == "gateway.attempt" and span.trace_id.hex() == trace_id]

    assert wait_until(attempt_statuses)
    [message] = attempt_statuses()
    assert "bad key" in message and REDACTED in message
    _assert_clean(message, _secrets(keys), "the attempt span")


def test_redact_rules() -> None:
    key = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert redact(f"key {key}.", [key]) == f"key {REDACTED}."
    # A provider's masked echo (first chars, stars, last four) stays readable.
    assert redact("key sk-proj-****6789.", [key]) == "key sk-proj-****6789."
    # Twelve chars or more of the key, anywhere, go; eleven stay.
    assert redact("x GHIJKLMNOPQR y", [key]) == f"x {REDACTED} y"
    assert redact("x GHIJKLMNOPQ y", [key]) == "x GHIJKLMNOPQ y"
    assert redact("a sk-proj-ABCDEF b 0123456789ab", [key]) == f"a {REDACTED} b 0123456789ab"
    # Two secrets overlapping in the text make one redaction; short values are not secrets.
    assert redact("AAAAAAAAAABBBBBBBBBB", ["AAAAAAAAAABBBB", "ABBBBBBBBBB"]) == REDACTED
    assert redact("a test b", ["test"]) == "a test b"


def _parsed(headers: dict[str, str], raw: bytes = b"{}"):
    return parse_request(endpoint=Endpoint.CHAT, method="POST", path="chat/completions",
                         query="", headers=Headers(headers), raw_body=raw,
                         body=CHAT.decode(Endpoint.CHAT, raw).body, dialect=CHAT.name,
                         request_id="r", trace_id="t")


def test_every_kind_of_known_secret_is_gathered() -> None:
    """Provider options, a virtual key's options, a minted Vertex token, settings."""
    account = orjson.dumps({"client_email": "bench@example.iam", "private_key": PEM}).decode()
    ctx = _parsed({"authorization": "Bearer client-provider-key",
                   "x-portkey-api-key": "gateway-api-key-1",
                   "x-portkey-aws-secret-access-key": "aws-secret-from-header",
                   "x-portkey-aws-session-token": "aws-session-token-value",
                   "x-portkey-azure-ad-token": "azure-ad-token-value",
                   "x-portkey-vertex-service-account-json": account,
                   "x-portkey-aws-region": "us-east-1-not-secret"},
                  b'{"model": "m", "messages": []}')
    vk = VirtualKey(id="1", slug="vk", provider="bedrock", secret="stored-vk-secret",
                    options={"aws_secret_access_key": "stored-aws-secret"})
    leaf = Leaf(path="config", provider="vertex-ai", api_key="stored-vk-secret",
                virtual_key=vk, options={"vertex-service-account-json": account})
    tokens = ServiceAccountTokens()
    tokens._cache[_cache_key(ServiceAccount.parse(account, ""))] = ("ya29.minted-token", 2e9)
    settings = Settings(_env_file=None, admin_token="the-admin-token",
                        vllm_api_key="the-backend-key")
    found = Secrets(settings, ctx, leaf, tokens.minted).values()
    for secret in ("client-provider-key", "gateway-api-key-1", "aws-secret-from-header",
                   "aws-session-token-value", "azure-ad-token-value", PEM, "stored-vk-secret",
                   "stored-aws-secret", "ya29.minted-token", "the-admin-token",
                   "the-backend-key"):
        assert secret in found, secret
    assert "us-east-1-not-secret" not in found
    assert not any("bench@example.iam" in value for value in found)  # the email is no secret
    assert "stored-vk-secret" not in repr(leaf) and "stored-aws-secret" not in repr(leaf)


PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


def test_an_echo_in_another_letter_case_is_redacted() -> None:
    key = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    assert redact(f"bad key {key.upper()}!", [key]) == f"bad key {REDACTED}!"
    assert redact(f"bad key {key.lower()}!", [key]) == f"bad key {REDACTED}!"
    # Spans stay right beside non-ASCII text (whose lower case may change its length).
    assert redact(f"İİ clé {key.swapcase()} ß", [key]) == f"İİ clé {REDACTED} ß"


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode],
                         ids=["standard", "urlsafe"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("template", ["{}", "Bearer {}", "user:{}", "{}:", "x-{}-y"],
                         ids=["key", "bearer", "basic", "basic-no-user", "inside"])
def test_a_base64_echo_is_redacted(encode, padded: bool, template: str) -> None:
    # Bytes that encode to '+' and '/' in the standard alphabet, '-' and '_' in the other.
    key = "sk-live-\xfb\xff" + "Zq8>>?~" + os.urandom(6).hex()
    raw = template.format(key).encode()
    assert base64.b64encode(raw) != base64.urlsafe_b64encode(raw)  # both alphabets tried
    encoded = encode(raw).decode()
    if not padded:
        encoded = encoded.rstrip("=")
    scrubbed = redact(f"invalid credentials: {encoded} (see docs)", [key])
    assert scrubbed.startswith("invalid credentials: ") and scrubbed.endswith(" (see docs)")
    assert REDACTED in scrubbed
    left = scrubbed.removeprefix("invalid credentials: ").removesuffix(" (see docs)")
    # What stays around the redaction encodes the text around the key, at most one char
    # shared with the key's first or last byte: never twelve chars of it.
    for part in left.split(REDACTED):
        assert len(part) <= 12, part


def test_base64_lookalikes_stay() -> None:
    key = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    other = base64.b64encode(b"some other credential entirely").decode()
    assert redact(f"token {other} rejected", [key]) == f"token {other} rejected"


def test_a_service_account_json_is_no_secret_but_its_private_key() -> None:
    """The option's JSON text shares field names ("client_email") with error messages."""
    without_key = orjson.dumps({"type": "service_account", "client_email": "a@b.iam",
                                "project_id": "demo-project-123"}).decode()
    with_key = orjson.dumps({"type": "service_account", "client_email": "a@b.iam",
                             "private_key": PEM}).decode()
    malformed = '{"client_email": "a@b.iam", "private_key": "' + PEM.replace("\n", "\\n")
    for account, secret in ((without_key, None), (with_key, PEM), (malformed, None)):
        ctx = _parsed({"x-portkey-vertex-service-account-json": account},
                      b'{"model": "m", "messages": []}')
        leaf = Leaf(path="", provider="vertex-ai", options={
            "vertex-service-account-json": account})
        found = Secrets(Settings(_env_file=None), ctx, leaf,
                        ServiceAccountTokens().minted).values()
        assert account not in found
        if secret is not None:
            assert secret in found
        message = "the service-account JSON lacks client_email, private_key"
        assert Secrets(Settings(_env_file=None), ctx, leaf, ServiceAccountTokens().minted).scrub(
            AuthenticationFailed(message)).message == message
    # A malformed JSON still gives its PEM key up for redaction.
    ctx = _parsed({})
    leaf = Leaf(path="", provider="vertex-ai", options={
        "vertex-service-account-json": '{"private_key": "' + PEM + '", oops'})
    assert PEM.strip() in Secrets(Settings(_env_file=None), ctx, leaf,
                                  ServiceAccountTokens().minted).values()


def test_a_huge_error_message_is_cut_before_it_is_scrubbed() -> None:
    """Scrubbing runs on the event loop: an upstream's megabyte of error text is cut first."""
    key = "sk-huge-error-echo-" + "k" * 24
    ctx = _parsed({"authorization": f"Bearer {key}"})
    leaf = Leaf(path="", provider="openai", api_key=key)
    echoed = f"bad key {key} " + base64.b64encode(os.urandom(768 * 1024)).decode() + key
    error = Secrets(Settings(_env_file=None), ctx, leaf, ServiceAccountTokens().minted).scrub(
        AuthenticationFailed(echoed))
    assert error.message.startswith("bad key") and REDACTED in error.message[:40]
    assert error.message.endswith(" [truncated]")
    assert len(error.message) <= MAX_ERROR_TEXT + len(" [truncated]")
    assert key not in error.message and key[:MIN_ECHO] not in error.message
