"""Attacks 1 and 2: stored secrets stay with their hosts; clients reach no internal service.

A real gateway process, the honest upstream on 127.0.0.1 and an "attacker" on 127.0.0.2 that
records everything it receives. The gateway trusts 127.0.0.2 as if it were a public host, so
only the destination rule (not the SSRF guard) stands between the planted secrets and it.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.databases import ADMIN_TOKEN, admin_client
from tests.support.gateway_process import GatewayProcess, gateway_env
from tests.support.mock_upstream import MockUpstream
from tests.support.servers import ThreadedServer, free_port

VK_SECRET = "sk-planted-vk-" + os.urandom(10).hex()
CONFIG_SECRET = "sk-planted-config-" + os.urandom(10).hex()
BACKEND_KEY = "backend-key-" + os.urandom(10).hex()
PLANTED = (VK_SECRET, CONFIG_SECRET, BACKEND_KEY)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "ok"}}],
          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class Attacker:
    """Answers like an OpenAI-compatible host on any path, and keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

    async def _any(self, request: Request) -> Response:
        self.received.append(dict(request.headers) | {"path": request.url.path})
        return JSONResponse(ANSWER)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._any,
                                       methods=["GET", "POST", "PUT", "DELETE"])])

    def saw_secret(self) -> bool:
        text = json.dumps(self.received)
        return any(secret in text for secret in PLANTED)


@pytest.fixture(scope="module")
def attacker() -> Iterator[tuple[Attacker, ThreadedServer]]:
    recorder = Attacker()
    with ThreadedServer(recorder.app(), host="127.0.0.2") as server:
        yield recorder, server


@pytest.fixture
def thief(attacker: tuple[Attacker, ThreadedServer]) -> Attacker:
    attacker[0].received.clear()
    return attacker[0]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            mock_server: tuple[MockUpstream, ThreadedServer]) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("destinations")
    env = gateway_env(
        tmp, mock_server[1].url, GATEWAY_TRUSTED_HOSTS="127.0.0.1,127.0.0.2",
        GATEWAY_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
        GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN, GATEWAY_AUTO_MIGRATE="true",
        GATEWAY_VLLM_API_KEY=BACKEND_KEY)
    process = GatewayProcess(env, cwd=tmp).start()
    yield process
    process.stop()


def _admin(gateway: GatewayProcess, path: str, payload: dict[str, Any]) -> httpx.Response:
    with admin_client(gateway) as admin:  # type: ignore[arg-type]
        return admin.post(path, json=payload)


@pytest.fixture(scope="module")
def keys(gateway: GatewayProcess,
         attacker: tuple[Attacker, ThreadedServer]) -> dict[str, str]:
    api = _admin(gateway, "/admin/api-keys", {"name": "inference"})
    vk = _admin(gateway, "/admin/virtual-keys",
                {"name": "planted", "provider": "openai", "key": VK_SECRET})
    listed = _admin(gateway, "/admin/virtual-keys", {
        "name": "lists the host", "provider": "openai", "key": VK_SECRET,
        "allowedCustomHosts": [attacker[1].url]})
    config = _admin(gateway, "/admin/configs", {"name": "keyed", "config": {
        "provider": "openai", "api_key": CONFIG_SECRET}})
    for answer in (api, vk, listed, config):
        assert answer.status_code == 201, answer.text
    return {"api": api.json()["key"], "vk": vk.json()["slug"],
            "listed": listed.json()["slug"], "config": config.json()["slug"]}


def _chat(gateway: GatewayProcess, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=headers,
                      timeout=30)


def _refused(response: httpx.Response, status: int, code: str, param: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    return error


def test_virtual_key_secret_is_not_sent_to_a_client_host(gateway, keys, attacker, thief):
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-virtual-key": keys["vk"],
                               "x-portkey-custom-host": f"{attacker[1].url}/v1"})
    error = _refused(response, 403, "custom_host_not_allowed", "x-portkey-custom-host")
    assert "allowed_custom_hosts" in error["message"]
    assert thief.received == []


@pytest.mark.parametrize("where", ["target", "parent"])
def test_inline_config_custom_host_with_a_virtual_key_is_refused(gateway, keys, attacker,
                                                                  thief, where):
    host = f"{attacker[1].url}/v1"
    target = {"virtual_key": keys["vk"]}
    config = {**target, "custom_host": host} if where == "target" else {
        "strategy": {"mode": "fallback"}, "custom_host": host, "targets": [target]}
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-config": json.dumps(config)})
    _refused(response, 403, "custom_host_not_allowed", "x-portkey-custom-host")
    assert thief.received == []


def test_saved_config_key_is_not_sent_to_a_client_host(gateway, keys, attacker, thief):
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-config": keys["config"],
                               "x-portkey-custom-host": f"{attacker[1].url}/v1"})
    _refused(response, 403, "custom_host_not_allowed", "x-portkey-custom-host")
    assert thief.received == []


def test_a_virtual_key_that_lists_the_origin_may_go_there(gateway, keys, attacker, thief):
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-virtual-key": keys["listed"],
                               "x-portkey-custom-host": f"{attacker[1].url}/v1"})
    assert response.status_code == 200, response.text
    assert [r["authorization"] for r in thief.received] == [f"Bearer {VK_SECRET}"]
    # Listed is one origin, not the host on any port.
    other = _chat(gateway, {"x-portkey-api-key": keys["api"],
                            "x-portkey-virtual-key": keys["listed"],
                            "x-portkey-custom-host": f"http://127.0.0.2:{free_port()}/v1"})
    _refused(other, 403, "custom_host_not_allowed", "x-portkey-custom-host")


def test_backend_key_never_reaches_a_client_host(gateway, keys, attacker, thief,
                                                 mock: MockUpstream):
    host = {"x-portkey-api-key": keys["api"], "x-portkey-provider": "vllm",
            "x-portkey-custom-host": f"{attacker[1].url}/v1"}
    assert _chat(gateway, host).status_code == 200
    assert _chat(gateway, host | {"authorization": "Bearer sk-their-own"}).status_code == 200
    assert [r.get("authorization") for r in thief.received] == [None, "Bearer sk-their-own"]
    assert not thief.saw_secret()
    # The bundled backend itself still gets it.
    assert _chat(gateway, {"x-portkey-api-key": keys["api"],
                           "x-portkey-provider": "vllm"}).status_code == 200
    assert mock.requests[-1].headers["authorization"] == f"Bearer {BACKEND_KEY}"


OPTION_ATTACKS = [
    ("azure-openai", "azure-resource-name", "127.0.0.2:{port}/#"),
    ("vertex-ai", "vertex-region", "x@127.0.0.2:{port}/#"),
    ("bedrock", "aws-region", "x@127.0.0.2:{port}/#"),
    ("runpod", "runpod-endpoint-id", "../../../x@127.0.0.2:{port}/#"),
]


@pytest.mark.parametrize(("provider", "option", "value"), OPTION_ATTACKS,
                         ids=[a[1] for a in OPTION_ATTACKS])
def test_option_values_cannot_move_the_url(gateway, keys, attacker, thief, provider, option,
                                           value):
    header = f"x-portkey-{option}"
    answers = [_chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-provider": provider, "authorization": "Bearer k",
                               "x-portkey-vertex-project-id": "p",
                               header: value.format(port=port)})
               for port in (attacker[1].port, 5432)]
    for response in answers:
        _refused(response, 400, "invalid_option", header)
    assert answers[0].json() == answers[1].json()  # a port scan learns nothing
    assert thief.received == []


def test_option_attacks_through_a_virtual_key_and_a_config(gateway, keys, attacker, thief):
    bad = f"127.0.0.2:{attacker[1].port}/#"
    stored = _admin(gateway, "/admin/virtual-keys", {
        "name": "bad", "provider": "azure-openai", "key": "k", "resourceName": bad})
    _refused(stored, 400, "invalid_option", "options.azure-resource-name")
    stored = _admin(gateway, "/admin/virtual-keys", {
        "name": "bad", "provider": "vertex-ai", "options": {"vertex-region": "x@y:1/#"}})
    _refused(stored, 400, "invalid_option", "options.vertex-region")
    config = {"provider": "azure-openai", "api_key": "k", "resource_name": bad}
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-config": json.dumps(config)})
    _refused(response, 400, "invalid_option", "x-portkey-azure-resource-name")
    assert thief.received == []


@pytest.mark.parametrize("hosts", [["ftp://127.0.0.2"], ["http://127.0.0.2:1/v1"],
                                   ["http://user@127.0.0.2"], ["not a url"]])
def test_allowed_custom_hosts_are_origins(gateway, keys, hosts):
    response = _admin(gateway, "/admin/virtual-keys", {
        "name": "x", "provider": "openai", "key": "k", "allowed_custom_hosts": hosts})
    _refused(response, 400, "invalid_custom_host", "allowed_custom_hosts")


def test_allowed_custom_hosts_are_stored_normalised(gateway, keys):
    created = _admin(gateway, "/admin/virtual-keys", {
        "name": "x", "provider": "openai", "key": "k",
        "allowed_custom_hosts": ["HTTPS://Models.Example.com", "http://127.0.0.2:8000/"]})
    assert created.status_code == 201, created.text
    with admin_client(gateway) as admin:  # type: ignore[arg-type]
        view = admin.get(f"/admin/virtual-keys/{created.json()['slug']}").json()
    assert view["allowed_custom_hosts"] == ["https://models.example.com:443",
                                            "http://127.0.0.2:8000"]


@pytest.fixture(params=["unset", "host:port"])
def strict_gateway(request: pytest.FixtureRequest, tmp_path: Path,
                   mock_url: str) -> Iterator[GatewayProcess]:
    """The production default (nothing but the backend's origin), or one exact host:port."""
    port = mock_url.rsplit(":", 1)[1]
    trusted = "" if request.param == "unset" else f"127.0.0.1:{port}"
    env = gateway_env(tmp_path, mock_url, GATEWAY_TRUSTED_HOSTS=trusted)
    process = GatewayProcess(env, cwd=tmp_path).start()
    yield process
    process.stop()


def test_loopback_services_are_refused_before_any_connection(strict_gateway, mock_url,
                                                             mock: MockUpstream):
    # Redis's and Postgres's ports on the backend's host: the guard refuses (its code says
    # so), so the gateway never opened a connection there.
    probes = [_chat(strict_gateway, {"x-portkey-provider": "openai",
                                     "x-portkey-custom-host": f"http://127.0.0.1:{port}/"})
              for port in (6379, 5432)]
    for response in probes:
        error = _refused(response, 400, "invalid_custom_host", "x-portkey-custom-host")
        assert "loopback" in error["message"]
    assert probes[0].json() == probes[1].json()
    # The trusted origin itself is still reachable.
    ok = _chat(strict_gateway, {"x-portkey-provider": "openai",
                                "x-portkey-custom-host": f"{mock_url}/v1"})
    assert ok.status_code == 200, ok.text
    assert len(mock.requests) == 1


AD_TOKEN = "eyJ-planted-ad-token-" + os.urandom(10).hex()
AWS_SECRET = "planted-aws-secret-" + os.urandom(10).hex()


def _service_account(token_uri: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "k1",
                       "private_key": pem, "client_email": "gw@p.iam.gserviceaccount.com",
                       "token_uri": token_uri})


def _saved(gateway: GatewayProcess, config: dict[str, Any]) -> str:
    created = _admin(gateway, "/admin/configs", {"name": "stored", "config": config})
    assert created.status_code == 201, created.text
    return str(created.json()["slug"])


@pytest.mark.parametrize("provider", ["azure-openai", "bedrock", "vertex-ai"])
def test_saved_config_credential_options_are_not_sent_to_a_client_host(
        gateway, keys, attacker, thief, provider):
    # The token endpoint is the attacker too: a minted token, or the minting, would show.
    config = {
        "azure-openai": {"provider": "azure-openai", "azure_ad_token": AD_TOKEN,
                         "resource_name": "myres", "deployment_id": "dep1"},
        "bedrock": {"provider": "bedrock", "aws_access_key_id": "AKIAPLANTED",
                    "aws_secret_access_key": AWS_SECRET, "aws_region": "us-east-1"},
        "vertex-ai": {"provider": "vertex-ai", "vertex_project_id": "p",
                      "vertex_service_account_json": _service_account(
                          f"{attacker[1].url}/token")},
    }[provider]
    slug = _saved(gateway, config)
    default = _admin(gateway, "/admin/api-keys", {"name": "defaulted",
                                                  "defaults": {"config_id": slug}})
    assert default.status_code == 201, default.text
    host = {"x-portkey-custom-host": f"{attacker[1].url}/v1"}
    for headers in ({"x-portkey-api-key": keys["api"], "x-portkey-config": slug},
                    {"x-portkey-api-key": default.json()["key"]}):  # the key's default config
        error = _refused(_chat(gateway, headers | host), 403, "custom_host_not_allowed",
                         "x-portkey-custom-host")
        assert "credential options" in error["message"]
    assert thief.received == []


@pytest.fixture(scope="module")
def azure_vk(gateway: GatewayProcess, mock_server: tuple[MockUpstream, ThreadedServer]) -> str:
    """An Azure virtual key whose own host is the loopback mock: nothing leaves loopback."""
    created = _admin(gateway, "/admin/virtual-keys", {
        "name": "azure", "provider": "azure-openai", "key": VK_SECRET,
        "resourceName": "myres", "deploymentName": "dep1",
        "custom_host": f"{mock_server[1].url}/v1"})
    assert created.status_code == 201, created.text
    return str(created.json()["slug"])


@pytest.mark.parametrize(("header", "value"), [
    ("x-portkey-azure-resource-name", "attacker"),
    ("x-portkey-resource_name", "attacker"),  # an alias the adapter also reads
    ("x-portkey-azure-deployment-id", "big"),  # the deployment decides the model
])
def test_client_cannot_override_a_virtual_keys_destination(gateway, keys, azure_vk, thief,
                                                           mock: MockUpstream, header, value):
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-virtual-key": azure_vk, header: value})
    error = _refused(response, 403, "option_not_allowed", header)
    assert "stored secret" in error["message"]
    assert mock.requests == [] and thief.received == []


def test_inline_config_cannot_override_a_virtual_keys_destination(gateway, keys, azure_vk,
                                                                  mock: MockUpstream):
    config = {"virtual_key": azure_vk, "deployment_id": "big"}
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-config": json.dumps(config)})
    _refused(response, 403, "option_not_allowed", "x-portkey-azure-deployment-id")
    assert mock.requests == []


def test_virtual_key_destination_options_may_be_repeated_and_others_given(
        gateway, keys, azure_vk, mock: MockUpstream):
    response = _chat(gateway, {"x-portkey-api-key": keys["api"],
                               "x-portkey-virtual-key": azure_vk,
                               "x-portkey-azure-resource-name": "myres",  # the stored value
                               "x-portkey-azure-api-version": "2024-06-01"})  # not a destination
    assert response.status_code == 200, response.text
    (seen,) = mock.requests
    assert (seen.path, seen.query) == ("openai/deployments/dep1/chat/completions",
                                       "api-version=2024-06-01")
    assert seen.headers["api-key"] == VK_SECRET


def test_client_cannot_override_a_saved_configs_destination(gateway, keys, thief,
                                                            mock: MockUpstream):
    slug = _saved(gateway, {"provider": "bedrock", "aws_access_key_id": "AKIAPLANTED",
                            "aws_secret_access_key": AWS_SECRET, "aws_region": "us-east-1"})
    response = _chat(gateway, {"x-portkey-api-key": keys["api"], "x-portkey-config": slug,
                               "x-portkey-aws-region": "eu-west-1"})
    _refused(response, 403, "option_not_allowed", "x-portkey-aws-region")
    assert mock.requests == [] and thief.received == []


@pytest.mark.parametrize("url", ["http://[::1", "http://[127.0.0.2]:18791/v1"])
def test_unparsable_hosts_are_400_naming_the_field(gateway, keys, attacker, thief, url):
    auth = {"x-portkey-api-key": keys["api"]}
    header = _chat(gateway, auth | {"x-portkey-provider": "openai",
                                    "x-portkey-custom-host": url})
    _refused(header, 400, "invalid_custom_host", "x-portkey-custom-host")
    inline = _chat(gateway, auth | {"x-portkey-config": json.dumps(
        {"provider": "openai", "api_key": "k", "custom_host": url})})
    _refused(inline, 400, "invalid_custom_host", "x-portkey-custom-host")
    stored = _admin(gateway, "/admin/virtual-keys", {
        "name": "x", "provider": "openai", "key": "k", "allowed_custom_hosts": [url]})
    _refused(stored, 400, "invalid_custom_host", "allowed_custom_hosts")
    # The request's own host is the attacker's (trusted), so nothing could leave loopback.
    minted = _chat(gateway, auth | {"x-portkey-provider": "vertex-ai",
                             "x-portkey-custom-host": f"{attacker[1].url}/v1",
                             "x-portkey-vertex-project-id": "p",
                             "x-portkey-vertex-service-account-json": _service_account(url)})
    error = _refused(minted, 400, "invalid_custom_host", "x-portkey-vertex-service-account-json")
    assert "token_uri" in error["message"]
    assert thief.received == []
