"""Everything long-lived the request path uses, built once in the app's lifespan (`app.py`),
after every part it holds, and never changed after."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.cache.stores import ResponseCache
from gateway.contracts.identity import Resolver
from gateway.contracts.outcome import Outcome
from gateway.db.engine import Database
from gateway.db.redis_link import RedisLink
from gateway.guardrails.runner import GuardrailRunner
from gateway.limits import Limiter
from gateway.net.hostguard import HostGuard
from gateway.net.upstream import UpstreamClient
from gateway.observability.metrics import Metrics
from gateway.observability.otel import Telemetry
from gateway.pipeline.output_limits import OutputLimits
from gateway.pipeline.record import Recording
from gateway.routing.breaker import Breakers
from gateway.routing.config import ConfigCache
from gateway.security.service_accounts import ServiceAccountTokens
from gateway.settings import Settings
from gateway.store.key_store import KeyStore
from gateway.store.responses import ResponseStore
from gateway.usage.setup import UsageLog


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    http: UpstreamClient
    host_guard: HostGuard
    breakers: Breakers
    configs: ConfigCache
    resolver: Resolver  # the key store's, or anonymous-only `NoKeyStore`
    tokens: ServiceAccountTokens
    recording: Recording
    guardrails: GuardrailRunner
    db: Database | None = None
    key_store: KeyStore | None = None  # admin API writes
    redis: RedisLink | None = None
    cache: ResponseCache | None = None
    limiter: Limiter | None = None
    usage: UsageLog | None = None  # the usage log, with a database and GATEWAY_USAGE_LOG on
    metrics: Metrics | None = None
    telemetry: Telemetry | None = None
    responses: ResponseStore | None = None  # stored /v1/responses (store: true)
    # Output limits a translated Messages or Responses body is clamped to per target.
    output_limits: OutputLimits = field(default_factory=OutputLimits.shipped)

    def record(self, outcome: Outcome) -> None:
        """Hand a finished request to the recorders (`pipeline/record.py`)."""
        self.recording.record(outcome)
