"""`keys rotate-master`: every secret re-sealed under the new master key, all still usable."""

from __future__ import annotations

from gateway.cli.main import main
from gateway.store.crypto import key_id, parse_master_key
from tests.support.databases import new_master_key, query
from tests.support.keys import chat, create_api_key, create_virtual_key
from tests.support.mock_upstream import MockUpstream

SECRETS = ["sk-rotation-one-aaaa1111", "sk-rotation-two-bbbb2222"]


def test_rotation_keeps_every_virtual_key_working(keyed_gateway, database_url: str,
                                                 master_key: str, mock: MockUpstream,
                                                 monkeypatch, capsys):
    old = keyed_gateway()
    slugs = [create_virtual_key(old, key=s, name=f"vk {i}")["slug"]
             for i, s in enumerate(SECRETS)]
    api_key = create_api_key(old)
    old.stop()

    new_key = new_master_key()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", new_key)
    monkeypatch.setenv("GATEWAY_PREVIOUS_MASTER_KEYS", master_key)
    assert main(["keys", "rotate-master"]) == 0
    assert '"re_encrypted": 2' in capsys.readouterr().out
    rows = query(database_url, "SELECT secret_key_id FROM virtual_keys")
    assert {r["secret_key_id"] for r in rows} == {key_id(parse_master_key(new_key))}

    rotated = keyed_gateway(master_key=new_key)  # the old key is gone from its settings
    for slug in slugs:
        assert chat(rotated, api_key=api_key, virtual_key=slug).status_code == 200
    assert [r.headers["authorization"] for r in mock.requests] == [f"Bearer {s}" for s in SECRETS]

    stale = keyed_gateway()  # still on the old master key: refuses, and says why
    refused = chat(stale, api_key=api_key, virtual_key=slugs[0])
    assert refused.status_code == 503
    assert "GATEWAY_PREVIOUS_MASTER_KEYS" in refused.json()["error"]["message"]
    assert main(["keys", "rotate-master"]) == 0  # a second run has nothing left to do
    assert '"re_encrypted": 0' in capsys.readouterr().out


def test_rotation_without_the_old_key_fails_clearly(keyed_gateway, database_url: str,
                                                    monkeypatch, capsys):
    gateway = keyed_gateway()
    create_virtual_key(gateway, key=SECRETS[0])
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_MASTER_KEY", new_master_key())
    monkeypatch.delenv("GATEWAY_PREVIOUS_MASTER_KEYS", raising=False)
    assert main(["keys", "rotate-master"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: virtual key 'anyscale-prod' was encrypted with master key id")
    assert SECRETS[0] not in err
