"""Every variable the bundled backend reads, from the environment, in one place.

Names follow the RunPod vLLM worker (`MODEL_NAME`, `MAX_MODEL_LEN`, ...) so its docs apply.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BackendSettings(BaseSettings):
    # Empty variables count as unset, so compose can pass `${MAX_MODEL_LEN:-}` through.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    # A hub id (`org/name`) or a local directory holding config.json and the weights.
    model_name: str
    served_model_name: str | None = None
    max_model_len: int | None = None
    dtype: str | None = None  # auto, half, bfloat16, float32, ...
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    # A Jinja template, or a path to one, for models that ship none.
    custom_chat_template: str | None = None
    max_num_seqs: int | None = None
    host: str = Field("127.0.0.1", alias="BACKEND_HOST")
    port: int = Field(8000, alias="BACKEND_PORT")
    # The key vLLM demands as `Authorization: Bearer`; the gateway holds it as GATEWAY_VLLM_API_KEY.
    api_key: SecretStr = Field(alias="BACKEND_API_KEY")
    # Seconds to wait for vLLM to load the model and answer /health.
    ready_timeout: float = Field(1800.0, alias="BACKEND_READY_TIMEOUT")
    # Further vLLM flags, shell-quoted, for what has no variable of its own.
    extra_args: str = Field("", alias="BACKEND_EXTRA_ARGS")

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else host
        return f"http://{host}:{self.port}"

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model_name
