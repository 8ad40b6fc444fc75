"""docker-compose.yml, the Dockerfile, .env.example and the dashboards agree with the code.

No Docker engine runs here, so these read the files and check them against `Settings` (the
variables the gateway reads), the CLI and the metrics it exposes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.cli.main import build_parser
from gateway.observability.metrics import Metrics, Sources
from gateway.routing.breaker import Breakers
from gateway.settings import Settings
from tests.support.settings_env import all_env_names, default_text, env_name

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# Variables docker-compose.yml itself reads (not the gateway): listed in .env.example too.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "GATEWAY_PUBLISH_PORT", "MODEL_NAME", "SERVED_MODEL_NAME",
                "MAX_MODEL_LEN", "DTYPE", "GPU_MEMORY_UTILIZATION", "TENSOR_PARALLEL_SIZE",
                "MAX_NUM_SEQS", "CUSTOM_CHAT_TEMPLATE", "BACKEND_API_KEY", "HF_TOKEN",
                "GPU_COUNT", "GRAFANA_ADMIN_PASSWORD"}


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services_and_profiles():
    profiles = {name: tuple(s.get("profiles", ())) for name, s in SERVICES.items()}
    assert profiles == {"postgres": (), "redis": (), "migrate": (), "gateway": (),
                        "vllm": ("gpu",), "prometheus": ("observability",),
                        "grafana": ("observability",)}


@pytest.mark.parametrize("service", ["gateway", "migrate"])
def test_gateway_environment_names_are_settings(service):
    unknown = set(environment(service)) - all_env_names()
    assert not unknown, f"{service} sets variables the gateway never reads: {unknown}"


def test_gateway_wiring_matches_the_other_services():
    env = environment("gateway")
    settings = Settings(_env_file=None)
    port = str(Settings.model_fields["port"].default)
    assert env["GATEWAY_PORT"] == port and env["GATEWAY_HOST"] == "0.0.0.0"
    assert any(str(p).endswith(f":{port}") for p in SERVICES["gateway"]["ports"])
    assert f"EXPOSE {port}" in DOCKERFILE
    database = urlsplit(env["DATABASE_URL"])
    postgres = environment("postgres")
    assert database.scheme == "postgresql+asyncpg"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert environment("migrate")["DATABASE_URL"] == env["DATABASE_URL"]
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    vllm = urlsplit(env["GATEWAY_VLLM_URL"])
    assert (vllm.hostname, str(vllm.port)) == ("vllm", environment("vllm")["BACKEND_PORT"])
    assert settings.port == int(port)


def test_start_order_and_commands():
    gateway, migrate = SERVICES["gateway"], SERVICES["migrate"]
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["command"] == ["python", "-m", "gateway", "migrate"]
    assert gateway["command"][:4] == ["python", "-m", "gateway", "serve"]
    assert migrate["image"] == gateway["image"]
    assert "/healthz" in " ".join(gateway["healthcheck"]["test"])
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert "serve" in commands


def test_stop_grace_outlasts_the_gateways_own():
    grace = float(environment("gateway")["GATEWAY_SHUTDOWN_GRACE_S"].split(":-")[-1].rstrip("}"))
    assert float(SERVICES["gateway"]["stop_grace_period"].rstrip("s")) > grace


def test_vllm_service_runs_on_a_gpu():
    vllm = SERVICES["vllm"]
    assert vllm["build"]["dockerfile"] == "backend/Dockerfile"
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert vllm["healthcheck"]["test"]
    assert any("huggingface" in v for v in vllm["volumes"])


def test_every_interpolated_variable_is_documented():
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    assert used - COMPOSE_ONLY <= all_env_names()
    assert used <= listed, used - listed


def test_env_example_lists_every_setting_with_its_default(tmp_path, monkeypatch):
    for name in all_env_names():
        monkeypatch.delenv(name, raising=False)
    lines = set(ENV_EXAMPLE.splitlines())
    for name in Settings.model_fields:
        default = default_text(name)
        expected = f"# {env_name(name)}=" if default is None else f"{env_name(name)}={default}"
        assert expected in lines, f".env.example lacks '{expected}'"
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE)
    loaded, defaults = Settings(_env_file=env_file), Settings(_env_file=None)
    assert loaded.model_dump() == defaults.model_dump()


def test_dockerfile_runs_unprivileged_with_a_health_check():
    assert DOCKERFILE.startswith("#") and "FROM python:3.11-slim" in DOCKERFILE
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", DOCKERFILE, re.M) and "/healthz" in DOCKERFILE
    cmd = re.findall(r"^CMD (.*)$", DOCKERFILE, re.M)[-1]
    assert json.loads(cmd) == ["python", "-m", "gateway", "serve", "--host", "0.0.0.0"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


def test_prometheus_scrapes_the_gateway():
    mount = next(v for v in SERVICES["prometheus"]["volumes"] if "prometheus.yml" in v)
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "gateway")
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["names"] == ["gateway"]
    assert job["dns_sd_configs"][0]["port"] == Settings.model_fields["port"].default


def test_dashboard_queries_name_real_metrics(tmp_path):
    for volume in SERVICES["grafana"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).exists()
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/gateway.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    names = {re.sub(r"_(total|bucket|count|sum)$", "", name)
             for expr in exprs for name in re.findall(r"gateway_[a-z_]+", expr)}
    metrics = Metrics(Settings(_env_file=None, spool_dir=tmp_path), Sources(Breakers(3, 30, 30)))
    exposed = {family.name for family in metrics.registry.collect()}
    assert names and names <= exposed, names - exposed
