"""The web console at `/console`: server-rendered pages over the key store and the usage
table, behind the admin token or an admin-scope API key. Mounted before the `/v1` passthrough."""

from __future__ import annotations

from starlette.routing import Mount

from gateway.console import auth, configs, keys, logs, overview, prompts
from gateway.console.web import Console

__all__ = ["Console", "routes"]

routes = [Mount("/console", routes=[*auth.routes, *overview.routes, *logs.routes,
                                    *keys.routes, *configs.routes, *prompts.routes])]
