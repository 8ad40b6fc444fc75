"""The portkey-ai SDK's admin methods against this gateway, and what they create in use."""

from __future__ import annotations

import pytest
from portkey_ai import Portkey
from portkey_ai.api_resources.exceptions import NotFoundError

from tests.support.keys import MESSAGES, create_api_key, sdk_client
from tests.support.mock_upstream import MockUpstream

SECRET = "sk-sdk-created-provider-key-9d8e"


def test_sdk_admin_methods_create_working_keys(keyed_gateway, mock: MockUpstream):
    gateway = keyed_gateway()
    admin_key = create_api_key(gateway, scopes=["admin"])
    portkey = Portkey(base_url=f"{gateway.url}/v1", api_key=admin_key)

    vk = portkey.virtual_keys.create(name="sdk key", provider="anyscale", key=SECRET,
                                     note="made by the SDK",
                                     usage_limits={"credit_limit": 5, "periodic_reset": "weekly"})
    assert vk.object == "virtual-key" and vk.slug == "sdk-key"
    listed = portkey.virtual_keys.list()
    assert listed.total == 1 and listed.data[0]["usage_limits"]["credit_limit"] == 5
    assert portkey.virtual_keys.retrieve(slug=vk.slug).model_extra["note"] == "made by the SDK"
    portkey.virtual_keys.update(slug=vk.slug, name="renamed",
                                rate_limits=[{"type": "requests", "unit": "rpm", "value": 9}])

    created = portkey.api_keys.create(type="workspace", sub_type="service", name="svc",
                                      scopes=["inference"])
    assert created.object == "api-key" and created.key.startswith("pgw-")
    assert portkey.api_keys.retrieve(id=created.id).name == "svc"
    assert {k["id"] for k in portkey.api_keys.list().data} >= {created.id}
    portkey.api_keys.update(id=created.id, name="svc-2")
    assert portkey.api_keys.retrieve(id=created.id).name == "svc-2"

    config = portkey.configs.create(name="sdk config", config={"virtual_key": vk.slug})
    assert config.object == "config" and config.slug.startswith("pc-") and config.version_id
    assert portkey.configs.retrieve(slug=config.slug).config == {"virtual_key": vk.slug}
    assert portkey.configs.list().total == 1
    portkey.configs.update(slug=config.slug, name="sdk config 2")

    client = sdk_client(gateway, api_key=created.key, virtual_key=vk.slug)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    assert mock.requests[-1].headers["authorization"] == f"Bearer {SECRET}"

    portkey.virtual_keys.delete(slug=vk.slug)
    portkey.api_keys.delete(id=created.id)
    portkey.configs.delete(slug=config.slug)
    with pytest.raises(NotFoundError):
        portkey.configs.retrieve(slug="pc-missing")


def test_sdk_created_config_routes_requests(keyed_gateway, mock: MockUpstream):
    """Needs the routing engine (issue 3) to read saved configs: passes after that merge."""
    gateway = keyed_gateway()
    admin_key = create_api_key(gateway, scopes=["admin"])
    portkey = Portkey(base_url=f"{gateway.url}/v1", api_key=admin_key)
    vk = portkey.virtual_keys.create(name="cfg target", provider="anyscale", key=SECRET)
    config = portkey.configs.create(name="c", config={"virtual_key": vk.slug})
    client = sdk_client(gateway, api_key=create_api_key(gateway), config=config.slug)
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    assert mock.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
