"""`python -m tests.support.limited_gateway PORT`: a gateway in a process of its own, for tests
of limits shared between processes. Settings come from the environment as usual; keys come
from `TEST_GATEWAY_KEYS` (JSON `{"keys": {...}, "virtual_keys": {...}}`) into the static key
store of tests/support/keys.py. Once the real key store is merged, such a test can run
`python -m gateway serve` against a database holding the keys instead."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.static_keys import StaticResolver


def main() -> None:
    spec = json.loads(os.environ["TEST_GATEWAY_KEYS"])
    resolver = StaticResolver(spec.get("keys", {}), spec.get("virtual_keys", {}))
    app = create_app(Settings())

    async def with_keys(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            app.state.services.resolver = resolver
        await app(scope, receive, send)

    uvicorn.run(with_keys, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                lifespan="on")


if __name__ == "__main__":
    main()
