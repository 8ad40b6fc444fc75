"""Is vLLM up? `/health` answers 200 once the model is loaded (it needs no key).

`python -m backend.health` checks once and exits 0 or 1: the container's health check.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import httpx

from backend.settings import BackendSettings


def is_ready(base_url: str, timeout: float = 5.0) -> bool:
    try:
        response = httpx.get(f"{base_url}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_ready(base_url: str, deadline_s: float, alive: Callable[[], bool],
               interval: float = 1.0) -> bool:
    """Poll until vLLM is ready; False when it died or the deadline passed first."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not alive():
            return False
        if is_ready(base_url):
            return True
        time.sleep(interval)
    return False


def main() -> int:
    settings = BackendSettings()
    return 0 if is_ready(settings.base_url) else 1


if __name__ == "__main__":
    sys.exit(main())
