"""Run `python -m gateway serve` as a real process, the way it runs in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import free_port

COMPAT_PROVIDERS = ("openai", "anyscale", "together-ai", "groq", "vllm")


def gateway_env(tmp_path: Path, mock_url: str, **extra: str) -> dict[str, str]:
    """Environment for a gateway process whose compatible providers point at the mock."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "PROMETHEUS_")) and k not in (
               "DATABASE_URL", "REDIS_URL")}
    env.update({
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3",
        "GATEWAY_SPOOL_DIR": str(tmp_path / "spool"),
        "GATEWAY_PROVIDER_BASE_URLS": json.dumps(
            {slug: f"{mock_url}/v1" for slug in COMPAT_PROVIDERS}),
        "GATEWAY_VLLM_URL": f"{mock_url}/v1",
        # Loopback mocks stand in for public hosts (the default trusts only the backend).
        "GATEWAY_TRUSTED_HOSTS": "127.0.0.1",
        "GATEWAY_LOG_LEVEL": "warning",
    })
    env.update(extra)
    return env


class GatewayProcess:
    def __init__(self, env: dict[str, str], *args: str, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (cwd or Path.cwd()) / f"gateway-{self.port}.log"
        self.args = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1",
                     "--port", str(self.port), *args]
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> GatewayProcess:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.args, env=self.env, cwd=self.cwd,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not answer /healthz:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
