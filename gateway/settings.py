"""Every setting the gateway reads, from the environment, in one place."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelPrice(BaseModel):
    """USD per million tokens; cached input defaults to the input price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)


class Settings(BaseSettings):
    # An empty variable (compose's `${VAR:-}`) means unset, not an empty value.
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", env_ignore_empty=True)

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
    # Comma-separated base64 master keys that still open old secrets during a rotation.
    previous_master_keys: SecretStr | None = None
    # Seconds an API key, virtual key or saved config lookup is cached in each process.
    key_cache_ttl: float = 5.0
    # Apply migrations on start-up; unset means only for SQLite (the embedded default).
    auto_migrate: bool | None = None
    require_api_key: bool = False
    # Comma-separated `host` (any port), `host:port` or `scheme://host:port` entries a client's
    # custom host may name despite the SSRF guard. Empty by default: only the bundled
    # backend's exact origin is trusted (developers with local mocks: localhost,127.0.0.1).
    trusted_hosts: str = ""
    vllm_url: str = "http://127.0.0.1:8000/v1"
    vllm_api_key: SecretStr | None = None
    # JSON object: "<provider>/<model>" (e.g. "vllm/meta-llama/Llama-3.1-8B-Instruct") or a
    # bare "<model>" -> {"input": .., "output": .., "cached_input": ..} in USD per million
    # tokens. Operators price their own backend's models here (they cost 0 until priced: see
    # gateway/usage/pricing.py); it overrides any built-in price.
    model_prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # JSON object: "<provider>/<model>" or a bare "<model>" -> the most output tokens it
    # may be asked for. A translated Messages or Responses request (Claude Code asks for
    # 32000) is clamped to it (gateway/pipeline/output_limits.py); it overrides or adds to
    # the shipped table (e.g. "vllm/<served model>": the backend's MAX_MODEL_LEN).
    model_output_limits: dict[str, PositiveInt] = Field(default_factory=dict)
    spool_dir: Path = Path("./spool")
    # Record every request in request_logs (off only to measure what logging costs).
    usage_log: bool = True
    # Usage writer: queue bound (rows), rows per insert, longest wait before a partial batch (s).
    usage_queue_size: int = Field(10_000, gt=0)
    usage_batch_size: int = Field(500, gt=0)
    usage_flush_interval_s: float = 1.0
    # Crash-safe journal of the rows the writer holds (gateway/usage/journal.py): on or off,
    # its directory (unset: `journal` inside the spool directory), and an fsync after every
    # write, so that it survives a power or node loss as well as a killed process (slower).
    usage_journal: bool = True
    usage_journal_dir: Path | None = None
    usage_journal_fsync: bool = False
    log_bodies: bool = False
    # Days a stored OpenAI Responses answer (`store: true`) is kept for retrieve and
    # previous_response_id (gateway/store/responses/); 0 keeps them until deleted.
    responses_retention_days: float = Field(30.0, ge=0)
    # JSON object: provider slug -> base URL, replacing the provider's public URL.
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = 32 * 1024 * 1024
    # Bounded work (README "Security"): the largest upstream JSON answer, SSE line or event, or
    # AWS event-stream frame read (502 past it), and the most of an error body kept (truncated).
    max_upstream_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    max_upstream_error_bytes: int = Field(1024 * 1024, gt=0)
    # Request heads: total bytes (request line and headers) and header count (431 past either),
    # seconds a client has to send a whole head, and seconds an idle keep-alive connection lives.
    # 128 KiB: twice the config cap, so an inline config at its cap reaches the validator.
    max_header_bytes: int = Field(128 * 1024, gt=0)
    max_header_count: int = Field(100, gt=0)
    header_timeout_s: float = Field(10.0, gt=0)
    keep_alive_s: float = Field(5.0, gt=0)
    # Seconds: upstream connect limit, and the longest quiet gap inside a stream.
    connect_timeout: float = 10.0
    stream_idle_timeout: float = 300.0
    # Default per-attempt limit (ms) when neither header nor config sets one; 0 = none.
    request_timeout_ms: int = 0
    max_connections: int = 1000
    # Retries: backoff base and cap (ms), and the most a request waits across its retries.
    retry_backoff_base_ms: int = 500
    retry_backoff_max_ms: int = 8000
    retry_budget_ms: int = 60000
    # Circuit breaker: this many failures within the window opens a target for the cool-down.
    circuit_failure_threshold: int = 5
    circuit_window_s: float = 30.0
    circuit_cooldown_s: float = 30.0
    # Count failures and open circuits for all replicas together, through Redis (REDIS_URL);
    # each process keeps its own breakers as well, and alone while Redis is away.
    circuit_shared: bool = False
    # Who holds the upstream connections under httpx's API: aiohttp (fast) or httpx's own pool.
    upstream_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    log_level: str = "info"
    # Redis (cache and limits): key prefix, per-call timeout (s), pause after a failure (s).
    redis_prefix: str = "gateway:"
    redis_timeout: float = 0.5
    redis_retry_interval: float = 1.0
    # Pooled connections per process for cache and limits: a burst past it waits (up to the
    # timeout) for a free one instead of opening more; the pub/sub channel has its own.
    redis_max_connections: int = Field(default=64, ge=1)
    # Refuse requests (429) instead of admitting them when limits cannot be checked.
    limits_fail_closed: bool = False
    # Seconds a concurrency slot lives if its gateway dies before releasing it.
    concurrency_slot_ttl: int = 900
    # Response cache: max_age when a config gives none (s), in-process bounds.
    cache_default_max_age: int = 86400
    cache_max_entries: int = 1000
    cache_max_bytes: int = 64 * 1024 * 1024
    cache_max_entry_bytes: int = 1024 * 1024
    # Operations: worker processes for `serve`, seconds in-flight requests get to finish on
    # SIGTERM, the OTLP/HTTP collector traces go to (unset: no tracing), and /metrics.
    workers: int = 1
    shutdown_grace_s: float = 30.0
    # The garbage collector's youngest-generation threshold in a serving process (Python's
    # is 700; 0 keeps it): gateway/server/heap.py.
    gc_young_threshold: int = Field(50_000, ge=0)
    otlp_endpoint: str | None = None
    otlp_export_interval_ms: int = 5000
    service_name: str = "ai-gateway"
    metrics_enabled: bool = True
    # Set by `serve --workers N` (N > 1) so every worker's metrics land in one directory.
    prometheus_multiproc_dir: Path | None = Field(
        None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR"))

    # Web console (/console): the key that signs its session cookies (unset: derived from the
    # admin token, else random per process), and how long a login lasts (hours).
    console_secret: SecretStr | None = None
    console_session_hours: float = 12.0

    @cached_property
    def trusted_host_set(self) -> frozenset[str]:
        """Trust-list entries (gateway/net/hostguard.py): the operator's, and the bundled
        backend's exact `scheme://host:port`, never its host on every port."""
        hosts = {h.strip() for h in self.trusted_hosts.split(",") if h.strip()}
        backend = urlsplit(self.vllm_url)
        if backend.hostname and backend.scheme in ("http", "https"):
            hosts.add(f"{backend.scheme}://{backend.netloc.rpartition('@')[2]}")
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
