"""Checks made before vLLM starts: the model name and the GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.preflight import gpu_problem, model_problem


@pytest.mark.parametrize("hub_id", [
    "meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3", "gpt2",
    "Qwen/Qwen2.5-0.5B-Instruct",
])
def test_valid_hub_ids_pass(hub_id: str):
    assert model_problem(hub_id) is None


@pytest.mark.parametrize("bad", [
    "bad model!!", "org/name/extra?", "-leading/dash", "org//name", "org/na me", "a/../b", "",
])
def test_invalid_hub_ids_are_named(bad: str):
    problem = model_problem(bad)
    assert problem is not None
    assert "MODEL_NAME" in problem


def test_missing_path_is_reported(tmp_path: Path):
    problem = model_problem(str(tmp_path / "nope"))
    assert problem == f"MODEL_NAME {str(tmp_path / 'nope')!r} is a path that does not exist"


def test_directory_without_config_is_reported(tmp_path: Path):
    assert "no config.json" in (model_problem(str(tmp_path)) or "")
    (tmp_path / "config.json").write_text("{}")
    assert model_problem(str(tmp_path)) is None


def test_file_instead_of_directory_is_reported(tmp_path: Path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    assert "is a file" in (model_problem(str(weights)) or "")


def test_gpu_build_without_gpu_is_reported():
    problem = gpu_problem("gpu", gpu_count=0)
    assert problem is not None and "no GPU is visible" in problem
    assert gpu_problem("gpu", gpu_count=1) is None
    assert gpu_problem("cpu", gpu_count=0) is None
    assert "not installed" in (gpu_problem("missing", gpu_count=0) or "")
