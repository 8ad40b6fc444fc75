"""Every setting the gateway reads, from the environment, in one place."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEFAULT_TRUSTED = ("localhost", "127.0.0.1", "::1")


class ModelPrice(BaseModel):
    """USD per million tokens; cached input defaults to the input price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./gateway.sqlite3",
        validation_alias=AliasChoices("DATABASE_URL", "GATEWAY_DATABASE_URL"),
    )
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "GATEWAY_REDIS_URL"))
    host: str = "127.0.0.1"
    port: int = 8787
    admin_token: SecretStr | None = None
    master_key: SecretStr | None = None
    require_api_key: bool = False
    # Comma-separated hosts a client's custom host may name despite the SSRF guard.
    trusted_hosts: str = ",".join(_DEFAULT_TRUSTED)
    vllm_url: str = "http://127.0.0.1:8000/v1"
    vllm_api_key: SecretStr | None = None
    # JSON object: "<provider>/<model>" (e.g. "vllm/meta-llama/Llama-3.1-8B-Instruct") ->
    # {"input": .., "output": .., "cached_input": ..} in USD per million tokens. Operators
    # price their own backend's models here; it overrides any built-in price.
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    spool_dir: Path = Path("./spool")
    log_bodies: bool = False
    # JSON object: provider slug -> base URL, replacing the provider's public URL.
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = 32 * 1024 * 1024
    # Seconds: upstream connect limit, and the longest quiet gap inside a stream.
    connect_timeout: float = 10.0
    stream_idle_timeout: float = 300.0
    # Default per-attempt limit (ms) when neither header nor config sets one; 0 = none.
    request_timeout_ms: int = 0
    max_connections: int = 1000
    log_level: str = "info"

    @cached_property
    def trusted_host_set(self) -> frozenset[str]:
        hosts = {h.strip().lower().strip("[]") for h in self.trusted_hosts.split(",") if h.strip()}
        backend_host = urlsplit(self.vllm_url).hostname
        if backend_host:
            hosts.add(backend_host.lower())
        return frozenset(hosts)

    @cached_property
    def base_urls(self) -> dict[str, str]:
        """Operator-set base URLs per provider; the bundled backend is `vllm`'s default."""
        return {"vllm": self.vllm_url, **self.provider_base_urls}

    def model_price(self, provider: str, model: str) -> ModelPrice | None:
        """The operator's price for a model, from GATEWAY_MODEL_PRICES, if any."""
        return self.model_prices.get(f"{provider}/{model}")

    @cached_property
    def default_keys(self) -> dict[str, str]:
        """Keys the gateway adds itself when a client sends none (the bundled backend's)."""
        if self.vllm_api_key is None:
            return {}
        return {"vllm": self.vllm_api_key.get_secret_value()}
