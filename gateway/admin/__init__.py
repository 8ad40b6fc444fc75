"""The admin API: API keys, virtual keys, saved configs, prompt templates, and the usage log.

It answers under `/admin/` and at the control-plane paths the `portkey-ai` SDK calls relative
to its base URL, which usually ends in `/v1`: so `/v1/virtual-keys` as well as `/virtual-keys`.
These routes are mounted before the `/v1/{path}` passthrough.
"""

from __future__ import annotations

from starlette.routing import Route

from gateway.admin import api_keys, configs, logs, prompts, virtual_keys

PREFIXES = ("/admin", "/v1", "")

routes: list[Route] = [
    route for prefix in PREFIXES
    for module in (api_keys, virtual_keys, configs, prompts) for route in module.routes(prefix)
] + logs.routes("/admin")  # /v1/logs is not an SDK path: it stays with the passthrough
