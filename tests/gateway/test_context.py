"""Header parsing into the request context."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from gateway.errors import InvalidRequest
from gateway.pipeline.dialects.chat import CHAT
from gateway.pipeline.parse import parse_request
from providers.base import Endpoint


def parse(headers: dict[str, str], body: bytes = b'{"model": "m", "stream": true}'):
    return parse_request(endpoint=Endpoint.CHAT, method="POST", path="chat/completions",
                         query="", headers=Headers(headers), raw_body=body,
                         body=CHAT.decode(Endpoint.CHAT, body).body, dialect=CHAT.name,
                         request_id="r", trace_id="t")


def test_every_portkey_header_is_read():
    ctx = parse({
        "x-portkey-provider": "Anyscale", "authorization": "Bearer esecret_1",
        "x-portkey-config": '{"retry": {"attempts": 1}}',
        "x-portkey-custom-host": "http://127.0.0.1:8000/v1",
        "x-portkey-forward-headers": "X-Team, x-user",
        "x-portkey-request-timeout": "1500", "x-portkey-metadata": '{"env": "prod"}',
        "x-portkey-api-key": "gw-key", "x-portkey-virtual-key": "anyscale-prod",
        "x-portkey-azure-resource-name": "res", "x-portkey-runpod-endpoint-id": "ep1",
    })
    assert ctx.provider == "anyscale" and ctx.provider_key == "esecret_1"
    assert ctx.inline_config == '{"retry": {"attempts": 1}}' and ctx.saved_config is None
    assert ctx.custom_host == "http://127.0.0.1:8000/v1"
    assert ctx.forward_headers == ("x-team", "x-user")
    assert ctx.request_timeout_ms == 1500
    assert ctx.metadata == {"env": "prod"}
    assert (ctx.api_key, ctx.virtual_key) == ("gw-key", "anyscale-prod")
    assert ctx.options == {"azure-resource-name": "res", "runpod-endpoint-id": "ep1"}
    assert ctx.stream is True


@pytest.mark.parametrize(("value", "key"), [("Bearer abc", "abc"), ("bearer abc", "abc"),
                                            ("abc", "abc"), ("Bearer ", None), ("", None)])
def test_authorization_forms(value, key):
    assert parse({"authorization": value}).provider_key == key


@pytest.mark.parametrize(("header", "value", "param"), [
    ("x-portkey-provider", "nope", "x-portkey-provider"),
    ("x-portkey-metadata", "[]", "x-portkey-metadata"),
    ("x-portkey-request-timeout", "-5", "x-portkey-request-timeout"),
    ("x-portkey-request-timeout", "1.5", "x-portkey-request-timeout"),
])
def test_bad_headers_name_themselves(header, value, param):
    with pytest.raises(InvalidRequest) as info:
        parse({header: value})
    assert info.value.param == param and info.value.status == 400
