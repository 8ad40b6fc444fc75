"""Several worker processes: where their Prometheus samples meet.

prometheus_client's multiprocess mode is chosen by PROMETHEUS_MULTIPROC_DIR when each worker
imports it, so `serve` sets the variable before the workers start and the workers' Settings
read it back. A directory left by an earlier run is emptied: its samples are not ours.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics_dir(settings: Settings, workers: int) -> Iterator[None]:
    """With workers > 1: a fresh samples directory for the server's lifetime."""
    if workers <= 1:
        yield
        return
    given = settings.prometheus_multiproc_dir
    path = str(given) if given else tempfile.mkdtemp(prefix="gateway-metrics-")
    if given:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    os.environ[MULTIPROC_ENV] = path  # inherited by the spawned workers
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)
