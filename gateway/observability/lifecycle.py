"""Wire metrics and tracing into the app's services, and take them down in the right order."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.observability.metrics import Metrics
from gateway.observability.otel import Telemetry
from gateway.services import Services


async def start(services: Services, telemetry: Telemetry | None) -> None:
    """In the lifespan, once `services` exists: the metrics recorder and its refresher."""
    if telemetry is not None:
        services.extras["telemetry"] = telemetry
    if not services.settings.metrics_enabled:
        return
    metrics = Metrics(services.settings)
    services.extras["metrics"] = metrics
    services.recorders.append(metrics.record)
    services.extras["metrics_refresh"] = asyncio.create_task(metrics.refresh_loop(services))


async def stop(services: Services) -> None:
    """After in-flight requests have finished: export the last spans, retire this worker."""
    task = services.extras.pop("metrics_refresh", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    metrics = services.extras.get("metrics")
    if metrics is not None:
        metrics.close()
    telemetry = services.extras.get("telemetry")
    if telemetry is not None:
        await asyncio.to_thread(telemetry.shutdown)  # blocks while it exports
