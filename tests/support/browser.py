"""Debian's headless Chromium, driven by Playwright through its `executable_path`.

No browser is downloaded: `scripts/test` installs the `chromium` package when it is missing.
Without it the browser tests skip, or fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def require_chromium() -> str:
    problem = None
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing (pip install -e '.[dev]')"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return CHROMIUM


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    """A page in a fresh Chromium profile (its own --user-data-dir under tmp_path)."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=executable, headless=True,
            args=FLAGS, viewport={"width": 1280, "height": 1400})
        try:
            context.set_default_timeout(20_000)
            yield context.new_page()
        finally:
            context.close()
