"""`python -m backend`: the vLLM command line it builds, and how it fails before starting vLLM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.launcher import EXIT_CONFIG, vllm_command, vllm_environment
from backend.settings import BackendSettings


def settings(**values: object) -> BackendSettings:
    base: dict[str, object] = {"model_name": "org/model", "api_key": "sk-backend-secret"}
    return BackendSettings(**(base | values))  # type: ignore[arg-type]


def test_command_maps_every_runpod_variable_to_its_vllm_flag():
    command = vllm_command(settings(
        served_model_name="chat", max_model_len=4096, dtype="bfloat16",
        gpu_memory_utilization=0.85, tensor_parallel_size=2, custom_chat_template="{{x}}",
        max_num_seqs=32, host="0.0.0.0", port=9000, extra_args="--enforce-eager --seed 3"),
        python="python")
    assert command == [
        "python", "-m", "vllm.entrypoints.openai.api_server", "--model", "org/model",
        "--host", "0.0.0.0", "--port", "9000", "--served-model-name", "chat",
        "--max-model-len", "4096", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.85",
        "--tensor-parallel-size", "2", "--chat-template", "{{x}}", "--max-num-seqs", "32",
        "--enforce-eager", "--seed", "3"]


def test_unset_variables_leave_vllm_defaults_and_key_stays_off_the_command_line():
    config = settings()
    command = vllm_command(config, python="python")
    assert command[3:] == ["--model", "org/model", "--host", "127.0.0.1", "--port", "8000"]
    assert not any("sk-backend-secret" in part for part in command)
    assert vllm_environment(config)["VLLM_API_KEY"] == "sk-backend-secret"


def test_settings_read_runpod_names_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODEL_NAME", "org/model")
    monkeypatch.setenv("MAX_MODEL_LEN", "2048")
    monkeypatch.setenv("SERVED_MODEL_NAME", "")  # empty counts as unset (compose passes these)
    monkeypatch.setenv("BACKEND_PORT", "8123")
    monkeypatch.setenv("BACKEND_API_KEY", "sk-env-secret")
    config = BackendSettings()
    assert (config.max_model_len, config.served_model_name, config.port) == (2048, None, 8123)
    assert config.served_name == "org/model"
    assert "sk-env-secret" not in repr(config)


def run_backend(tmp_path: Path, **env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MODEL_NAME", "BACKEND_API_KEY")} | env
    result = subprocess.run([sys.executable, "-m", "backend"], env=environ, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_missing_model_path_fails_fast_with_a_clear_message(tmp_path: Path):
    missing = tmp_path / "models" / "llama"
    code, output = run_backend(tmp_path, MODEL_NAME=str(missing), BACKEND_API_KEY="k")
    assert code == EXIT_CONFIG
    assert f"MODEL_NAME '{missing}' is a path that does not exist" in output
    assert "starting vLLM" not in output


def test_invalid_hub_id_fails_fast_with_a_clear_message(tmp_path: Path):
    code, output = run_backend(tmp_path, MODEL_NAME="not a model!", BACKEND_API_KEY="k")
    assert code == EXIT_CONFIG
    assert "MODEL_NAME 'not a model!' is neither an existing path nor a valid hub id" in output


def test_missing_model_name_and_key_are_named(tmp_path: Path):
    code, output = run_backend(tmp_path)
    assert code == EXIT_CONFIG
    assert "MODEL_NAME" in output and "BACKEND_API_KEY" in output
