"""The admin REST API: create, list, read, update, revoke; config versions; clear 4xx."""

from __future__ import annotations

from tests.support.databases import admin_client
from tests.support.keys import chat, create_api_key

SECRET = "sk-admin-test-secret-0000aaaa"


def test_api_key_lifecycle(keyed_gateway):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        created = admin.post("/admin/api-keys", json={
            "name": "team-a", "scopes": ["inference"],
            "rate_limits": [{"type": "requests", "unit": "rpm", "value": 60},
                            {"type": "tokens", "unit": "rpm", "value": 1000},
                            {"type": "concurrency", "value": 4}],
            "usage_limits": {"credit_limit": 12.5, "periodic_reset": "monthly"}})
        assert created.status_code == 201
        body = created.json()
        assert body["object"] == "api-key" and body["key"].startswith("pgw-")
        assert len(body["key"]) > 40
        read = admin.get(f"/admin/api-keys/{body['id']}").json()
        assert read["key"] == f"{body['key'][:12]}...{body['key'][-4:]}"
        assert read["rate_limits"] == [{"type": "requests", "unit": "rpm", "value": 60},
                                       {"type": "tokens", "unit": "rpm", "value": 1000},
                                       {"type": "concurrency", "value": 4}]
        assert read["usage_limits"] == {"credit_limit": 12.5, "periodic_reset": "monthly"}
        updated = admin.patch(f"/admin/api-keys/{body['id']}",
                              json={"name": "team-b", "scopes": ["inference", "admin"]}).json()
        assert (updated["name"], updated["scopes"]) == ("team-b", ["admin", "inference"])
        assert updated["rate_limits"] == read["rate_limits"]  # untouched by a partial update
        assert [k["id"] for k in admin.get("/admin/api-keys").json()["data"]] == [body["id"]]
        revoked = admin.delete(f"/admin/api-keys/{body['id']}").json()
        assert revoked["data"]["status"] == "revoked"
        assert admin.get("/admin/api-keys/nope").status_code == 404


def test_virtual_key_update_replaces_the_secret(keyed_gateway, mock):
    gateway = keyed_gateway()
    api_key = create_api_key(gateway)
    with admin_client(gateway) as admin:
        slug = admin.post("/admin/virtual-keys", json={
            "name": "Prod Key", "provider": "anyscale", "key": SECRET}).json()["slug"]
        assert slug == "prod-key"
        second = admin.post("/admin/virtual-keys", json={
            "name": "Prod Key", "provider": "anyscale", "key": SECRET}).json()["slug"]
        assert second.startswith("prod-key-") and second != slug
        updated = admin.put(f"/admin/virtual-keys/{slug}",
                            json={"key": "sk-rotated-provider-key-zzzz",
                                  "resourceName": "res", "deploymentName": "dep",
                                  "apiVersion": "2024-06-01"}).json()
        assert updated["key_last4"] == "zzzz" and updated["masked_key"] == "****zzzz"
        assert updated["options"] == {"azure-resource-name": "res",
                                      "azure-deployment-id": "dep",
                                      "azure-api-version": "2024-06-01"}
    assert chat(gateway, api_key=api_key, virtual_key=slug).status_code == 200
    assert mock.requests[0].headers["authorization"] == "Bearer sk-rotated-provider-key-zzzz"


def test_config_versions_are_kept(keyed_gateway):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        created = admin.post("/admin/configs", json={
            "name": "Main routes", "config": {"provider": "openai"}}).json()
        assert created["object"] == "config" and created["slug"].startswith("pc-main-routes-")
        ref = created["slug"]
        updated = admin.put(f"/admin/configs/{ref}",
                            json={"config": {"provider": "anyscale"}}).json()
        assert updated["version_id"] != created["version_id"]
        assert admin.get(f"/admin/configs/{created['id']}").json()["config"] == \
            {"provider": "anyscale"}
        versions = admin.get(f"/admin/configs/{ref}/versions").json()["data"]
        assert [(v["version"], v["config"]) for v in versions] == [
            (1, {"provider": "openai"}), (2, {"provider": "anyscale"})]
        assert admin.delete(f"/admin/configs/{ref}").status_code == 200
        assert admin.get("/admin/configs").json()["total"] == 0


def test_bad_admin_input_is_a_clear_400(keyed_gateway):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        cases = {
            "provider": admin.post("/admin/virtual-keys", json={"name": "x", "provider": "nope"}),
            "scopes.0": admin.post("/admin/api-keys", json={"name": "x", "scopes": ["root"]}),
            "config": admin.post("/admin/configs", json={"name": "x", "config": "[]"}),
            "rate_limits": admin.post("/admin/api-keys", json={
                "name": "x", "rate_limits": [{"type": "tokens", "unit": "rpd", "value": 5}]}),
            "expires_at": admin.post("/admin/api-keys", json={
                "name": "x", "expires_at": "2030-01-01T00:00:00"}),
        }
        not_json = admin.post("/admin/configs", content=b"{", headers={
            "content-type": "application/json"})
    for field, response in cases.items():
        assert response.status_code == 400, field
        assert response.json()["error"]["param"] == field
    assert "unknown provider 'nope'" in cases["provider"].json()["error"]["message"]
    assert not_json.status_code == 400


def test_control_plane_paths_answer_with_and_without_v1(keyed_gateway):
    gateway = keyed_gateway()
    with admin_client(gateway) as admin:
        made = [admin.post(f"{prefix}/configs", json={"name": prefix or "root",
                                                      "config": {"provider": "openai"}})
                for prefix in ("/admin", "/v1", "")]
        assert [r.status_code for r in made] == [201, 201, 201]
        totals = [admin.get(f"{prefix}/configs").json()["total"]
                  for prefix in ("/admin", "/v1", "")]
    assert totals == [3, 3, 3]
