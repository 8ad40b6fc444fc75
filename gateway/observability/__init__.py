"""What operators watch: Prometheus metrics (`/metrics`), OpenTelemetry traces, and the
liveness and readiness routes (`/healthz`, `/readyz`)."""
