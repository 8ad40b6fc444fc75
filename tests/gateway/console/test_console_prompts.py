"""The console's prompt pages: list, versions, and a version rendered with sample variables."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.console import console_client, csrf_of
from tests.support.databases import admin_client
from tests.support.servers import ThreadedServer

TEMPLATE = [{"role": "system", "content": "Write {{count}} lines."},
            {"role": "user", "content": "About {{topic}}"}]


@pytest.fixture
def gateway(keyed_gateway: Callable[..., ThreadedServer]) -> ThreadedServer:
    return keyed_gateway()


def test_prompts_list_show_versions_and_render(gateway: ThreadedServer) -> None:
    with admin_client(gateway) as admin:
        made = admin.post("/admin/prompts", json={"name": "Poet", "messages": TEMPLATE,
                                                  "model": "gpt-4o-mini", "provider": "openai"})
        assert made.status_code == 201, made.text
        slug = made.json()["slug"]
        changed = admin.put(f"/admin/prompts/{slug}", json={"messages": [
            {"role": "user", "content": "Version two about {{topic}}"}]})
        assert changed.status_code == 200, changed.text
    with console_client(gateway) as client:
        listing = client.get("/console/prompts").text
        assert slug in listing and "Poet" in listing
        page = client.get(f"/console/prompts/{slug}").text
        assert "v2" in page and "v1" in page and "Version two" in page
        csrf = csrf_of(page)
        rendered = client.post(f"/console/prompts/{slug}", data={
            "csrf": csrf, "version": "1", "variables": '{"count": 3, "topic": "rain"}'})
        assert rendered.status_code == 200
        out = rendered.text[rendered.text.index('id="rendered"'):]
        assert "Write 3 lines." in out and "About rain" in out
        missing = client.post(f"/console/prompts/{slug}", data={
            "csrf": csrf, "version": "1", "variables": '{"count": 3}'})
        assert missing.status_code == 400 and "topic" in missing.text
        assert 'id="rendered"' not in missing.text
        bad_json = client.post(f"/console/prompts/{slug}", data={
            "csrf": csrf, "version": "2", "variables": "{oops"})
        assert bad_json.status_code == 400 and "not valid JSON" in bad_json.text
        forged = client.post(f"/console/prompts/{slug}", data={"version": "1"})
        assert forged.status_code == 403
        assert client.get("/console/prompts/pp-none").status_code == 404
