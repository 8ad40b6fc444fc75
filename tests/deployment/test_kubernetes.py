"""deploy/kubernetes renders with `kubectl kustomize`, matches the Kubernetes schemas, and agrees
with the code: every setting has a home in the ConfigMap or the Secret, the probes hit real
routes, the pods run locked down and outlast the gateway's own drain.

kubectl must be installed (CI has it): without it these tests fail, they do not skip.
"""

from __future__ import annotations

import base64
import copy
import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from backend.settings import BackendSettings
from gateway.cli.main import build_parser
from gateway.observability.health import routes as health_routes
from gateway.observability.metrics import routes as metrics_routes
from gateway.settings import Settings
from tests.support.settings_env import all_env_names, env_name

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
# The schemas of the Kubernetes release kubectl 1.32 speaks (kubernetes-validate bundles them).
KUBERNETES_VERSION = "1.32.0"
TARGETS = ["base", *sorted(f"overlays/{p.name}" for p in (K8S / "overlays").iterdir())]
# Custom resources: no schema in kubernetes-validate, so their shape is checked by hand below.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
SECRET_NAME = "ai-gateway-secrets"
# Settings no manifest sets, and why.
NOT_DEPLOYED = {
    "PROMETHEUS_MULTIPROC_DIR": "`serve` sets it for its own workers; even an empty value "
                                "switches prometheus_client to multiprocess mode",
}
# Settings that hold credentials: connection URLs carry passwords, besides the SecretStr fields.
SECRET_URLS = {"DATABASE_URL", "REDIS_URL"}
# Files that touch os.environ outside the Settings classes, and why that needs no manifest.
ENVIRONMENT_USES = {
    "gateway/cli/keys.py": "reads the variable an operator names with --secret-env",
    "gateway/server/workers.py": "sets PROMETHEUS_MULTIPROC_DIR for the workers it spawns",
    "backend/launcher.py": "hands its environment on to the vLLM child",
}
# Read by libraries inside the backend image, not by our code.
BACKEND_LIBRARY_VARIABLES = {"HF_TOKEN"}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed: tests/deployment renders deploy/kubernetes with "
                    "`kubectl kustomize` (kubectl 1.27+, kustomize v5)", pytrace=False)
    return path


@functools.cache
def render(target: str) -> tuple[dict[str, Any], ...]:
    done = subprocess.run([kubectl(), "kustomize", str(K8S / target)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"kubectl kustomize {target} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def config_map(docs: tuple[dict[str, Any], ...], container: dict[str, Any]) -> dict[str, str]:
    """The data of the one ConfigMap the container takes its environment from."""
    refs = [source["configMapRef"]["name"] for source in container.get("envFrom", ())]
    assert len(refs) == 1, refs
    return find(docs, "ConfigMap", refs[0]).get("data", {})


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variable name -> its secretKeyRef, for every `env` entry (all must be secret refs)."""
    refs = {}
    for entry in container.get("env", ()):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        assert ref, f"{entry['name']}: settings go in the ConfigMap; `env` is for secrets only"
        refs[entry["name"]] = ref
    return refs


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def gateway(target: str) -> tuple[tuple[dict[str, Any], ...], dict[str, Any], dict[str, Any]]:
    docs = render(target)
    deployment = find(docs, "Deployment", "ai-gateway")
    return docs, deployment, only_container(deployment)


def dockerfile_uid(path: str) -> int:
    return int(re.search(r"useradd .*--uid (\d+)", (ROOT / path).read_text()).group(1))


def backend_env_name(field: str) -> str:
    info = BackendSettings.model_fields[field]
    return info.alias or field.upper()


def settings_from(cls: type[BaseSettings], monkeypatch: pytest.MonkeyPatch,
                  names: set[str], values: dict[str, str]) -> Any:
    """Build `cls` from exactly these variables, as a pod would see them."""
    for name in names:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return cls(_env_file=None)


def check_locked_down(workload: dict[str, Any], uid: int, *, read_only: bool = True,
                      cpu_limit: bool = True) -> None:
    spec = pod_spec(workload)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    # Service links would inject <SERVICE>_PORT=tcp://... variables into the settings' namespace.
    assert spec["enableServiceLinks"] is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert context["readOnlyRootFilesystem"] is read_only
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert ({"cpu", "memory"} if cpu_limit else {"memory"}) <= set(resources["limits"])


# --- rendering and schemas ---

@pytest.mark.parametrize("target", TARGETS)
def test_kubectl_renders_the_target(target):
    docs = render(target)
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert docs and len(keys) == len(set(keys))
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job",
            "ConfigMap", "ServiceAccount"} <= {d["kind"] for d in docs}


@pytest.mark.parametrize("target", TARGETS)
def test_every_document_matches_the_kubernetes_schema(target):
    errors = []
    for doc in render(target):
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue
        try:  # strict: unknown fields (a misspelt key) fail too
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_misspelt_field_and_a_wrong_type():
    _, deployment, _ = gateway("base")
    misspelt = copy.deepcopy(deployment)
    only_container(misspelt)["readinessprobe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
    wrong_type = copy.deepcopy(deployment)
    pod_spec(wrong_type)["terminationGracePeriodSeconds"] = "50"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_custom_resources_are_service_monitors_on_the_metrics_port(target):
    docs = render(target)
    custom = [d for d in docs if (d["apiVersion"], d["kind"]) in CUSTOM_KINDS]
    if target == "overlays/monitoring":
        assert len(custom) == 1
    service = find(docs, "Service", "ai-gateway")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    metrics_paths = {route.path for route in metrics_routes}
    for monitor in custom:
        assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["path"] in metrics_paths
        assert ports["metrics"]["targetPort"] == "http"  # /metrics is served on the API port


# --- the gateway pod ---

@pytest.mark.parametrize("target", TARGETS)
def test_gateway_and_migration_pods_run_locked_down(target):
    docs, deployment, _ = gateway(target)
    uid = dockerfile_uid("Dockerfile")
    check_locked_down(deployment, uid)
    check_locked_down(find(docs, "Job", "ai-gateway-migrate"), uid)
    service_account = find(docs, "ServiceAccount", pod_spec(deployment)["serviceAccountName"])
    assert service_account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("target", TARGETS)
def test_writable_paths_are_volumes(target):
    docs, deployment, container = gateway(target)
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {Path(m["mountPath"]): volumes[m["name"]] for m in container["volumeMounts"]}
    assert all("emptyDir" in v or "persistentVolumeClaim" in v for v in mounts.values())
    assert Path("/tmp") in mounts
    data = config_map(docs, container)
    path_settings = [name for name, field in Settings.model_fields.items()
                     if Path in (field.annotation, *get_args(field.annotation))]
    for name in path_settings:
        value = data.get(env_name(name))
        if value:  # every directory the gateway writes lies under a volume
            assert Path(value).is_absolute(), name
            assert any(Path(value).is_relative_to(m) for m in mounts), f"{name}={value}"
    assert data[env_name("spool_dir")]


@pytest.mark.parametrize("target", TARGETS)
def test_probes_hit_the_health_routes_on_the_serving_port(target):
    docs, _, container = gateway(target)
    routes = {route.path for route in health_routes}
    assert {"/healthz", "/readyz"} <= routes
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    data = config_map(docs, container)
    assert ports["http"] == int(data["GATEWAY_PORT"]) == Settings.model_fields["port"].default
    assert data["GATEWAY_HOST"] == "0.0.0.0"
    assert container["command"][:4] == ["python", "-m", "gateway", "serve"]


@pytest.mark.parametrize("target", TARGETS)
def test_termination_grace_outlasts_the_pause_and_the_drain(target):
    docs, deployment, container = gateway(target)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    grace = float(config_map(docs, container)["GATEWAY_SHUTDOWN_GRACE_S"])
    default = Settings.model_fields["shutdown_grace_s"].default
    period = pod_spec(deployment)["terminationGracePeriodSeconds"]
    # After the drain the gateway still writes out queued usage rows and spans.
    assert period > pause + max(grace, default), (period, pause, grace)


@pytest.mark.parametrize("target", TARGETS)
def test_replicas_spread_and_belong_to_the_autoscaler(target):
    docs, deployment, _ = gateway(target)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]  # an apply must not reset the HPA's count
    assert matches(deployment["spec"]["selector"]["matchLabels"], labels)
    spread = pod_spec(deployment)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone",
                                                  "kubernetes.io/hostname"}
    assert all(matches(c["labelSelector"]["matchLabels"], labels) for c in spread)
    hpa = find(docs, "HorizontalPodAutoscaler", "ai-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target_ref = hpa["spec"]["scaleTargetRef"]
    assert (target_ref["kind"], target_ref["name"]) == ("Deployment", "ai-gateway")
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    pdb = find(docs, "PodDisruptionBudget", "ai-gateway")
    assert matches(pdb["spec"]["selector"]["matchLabels"], labels)
    # A drain must be able to proceed, one pod at a time.
    assert pdb["spec"].get("maxUnavailable", 0) >= 1 or \
        pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


@pytest.mark.parametrize("target", TARGETS)
def test_service_reaches_only_gateway_pods(target):
    docs, deployment, _ = gateway(target)
    service = find(docs, "Service", "ai-gateway")
    selector = service["spec"]["selector"]
    for workload in (d for d in docs if d["kind"] in ("Deployment", "Job")):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert matches(selector, labels) == (workload is deployment), workload["metadata"]
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == \
        {"http": "http", "metrics": "http"}


@pytest.mark.parametrize("target", TARGETS)
def test_migration_job_runs_the_cli_once_with_the_gateways_settings(target):
    docs, deployment, container = gateway(target)
    job = find(docs, "Job", "ai-gateway-migrate")
    migrate = only_container(job)
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert migrate["command"] == ["python", "-m", "gateway", "migrate"] and "migrate" in commands
    assert migrate["image"] == container["image"]
    assert migrate["envFrom"] == container["envFrom"]
    assert secret_refs(migrate)["DATABASE_URL"] == secret_refs(container)["DATABASE_URL"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert config_map(docs, container)["GATEWAY_AUTO_MIGRATE"] == "false"


# --- settings: each one in the ConfigMap or the Secret, nothing else ---

@pytest.mark.parametrize("target", TARGETS)
def test_every_setting_is_in_the_configmap_or_the_secret_and_nothing_else(target):
    docs, _, container = gateway(target)
    config, secrets = set(config_map(docs, container)), secret_refs(container)
    expected = {env_name(name) for name in Settings.model_fields} - set(NOT_DEPLOYED)
    missing = expected - config - set(secrets)
    assert not missing, f"settings with no home: {sorted(missing)}: add them to " \
        "deploy/kubernetes/base/gateway.env, or as secretKeyRefs to base/deployment.yaml"
    stale = (config | set(secrets)) - all_env_names()
    assert not stale, f"variables the gateway never reads: {sorted(stale)}"
    assert not config & set(secrets)
    assert not (config | set(secrets)) & set(NOT_DEPLOYED)
    for name, ref in secrets.items():  # the Secret's keys are the variables' names
        assert (ref["name"], ref["key"]) == (SECRET_NAME, name)


def test_the_secret_holds_exactly_the_secret_settings():
    _, _, container = gateway("base")
    secrets = secret_refs(container)
    sealed = {env_name(name) for name, field in Settings.model_fields.items()
              if SecretStr in (field.annotation, *get_args(field.annotation))}
    assert set(secrets) == sealed | SECRET_URLS
    required = {name for name, ref in secrets.items() if not ref.get("optional", False)}
    assert required == SECRET_URLS  # external Postgres and Redis; the rest may stay unset


@pytest.mark.parametrize("target", TARGETS)
def test_configmap_values_are_valid_settings(target, monkeypatch):
    docs, _, container = gateway(target)
    values = {**config_map(docs, container),
              "DATABASE_URL": "postgresql+asyncpg://gateway:pw@postgres:5432/gateway",
              "REDIS_URL": "redis://redis:6379/0",
              "GATEWAY_MASTER_KEY": base64.b64encode(bytes(32)).decode()}
    settings = settings_from(Settings, monkeypatch, all_env_names(), values)
    assert settings.workers == 1 and settings.auto_migrate is False
    assert settings.spool_dir.is_absolute()


def test_no_other_code_reads_the_environment():
    uses = set()
    for package in ("gateway", "backend", "providers"):
        for path in (ROOT / package).rglob("*.py"):
            if re.search(r"os\.environ|getenv\(", path.read_text()):
                uses.add(path.relative_to(ROOT).as_posix())
    uses -= {"gateway/settings.py", "backend/settings.py"}
    changed = uses ^ set(ENVIRONMENT_USES)
    assert not changed, "a new environment read: make it a Settings field (and give it a " \
        f"home in deploy/kubernetes), or list it in ENVIRONMENT_USES: {sorted(changed)}"


# --- the GPU overlay: the bundled vLLM backend ---

def backend() -> tuple[tuple[dict[str, Any], ...], dict[str, Any], dict[str, Any]]:
    docs = render("overlays/gpu-backend")
    deployment = find(docs, "Deployment", "ai-gateway-backend")
    return docs, deployment, only_container(deployment)


def test_backend_runs_on_a_gpu_node_with_a_model_cache():
    docs, deployment, container = backend()
    spec, data = pod_spec(deployment), config_map(docs, container)
    # vLLM writes caches under $HOME; a CPU limit would only throttle its tokenizer threads.
    check_locked_down(deployment, dockerfile_uid("backend/Dockerfile"), read_only=False,
                      cpu_limit=False)
    assert spec["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    gpus = container["resources"]["requests"]["nvidia.com/gpu"]
    assert gpus == container["resources"]["limits"]["nvidia.com/gpu"]
    assert gpus == int(data["TENSOR_PARALLEL_SIZE"]) >= 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    hf_home = re.search(r"HF_HOME=(\S+)", (ROOT / "backend/Dockerfile").read_text()).group(1)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    claim = mounts[hf_home]["persistentVolumeClaim"]["claimName"]
    find(docs, "PersistentVolumeClaim", claim)
    assert mounts["/dev/shm"]["emptyDir"]["medium"] == "Memory"


def test_backend_probes_its_health_route_for_as_long_as_it_may_load():
    docs, _, container = backend()
    assert '/health"' in (ROOT / "backend/health.py").read_text()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = container["startupProbe"]
    ready_timeout = float(config_map(docs, container)["BACKEND_READY_TIMEOUT"])
    assert startup["periodSeconds"] * startup["failureThreshold"] >= ready_timeout


def test_gateway_reaches_the_backend_through_its_service_with_one_key():
    docs, deployment, container = backend()
    service = find(docs, "Service", "ai-gateway-backend")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(service["spec"]["selector"], labels)
    (port,) = service["spec"]["ports"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    data = config_map(docs, container)
    assert ports[port["targetPort"]] == int(data["BACKEND_PORT"])
    assert data["BACKEND_HOST"] == "0.0.0.0"
    _, _, gateway_container = gateway("overlays/gpu-backend")
    url = urlsplit(config_map(docs, gateway_container)["GATEWAY_VLLM_URL"])
    assert (url.hostname, url.port, url.path) == (service["metadata"]["name"], port["port"], "/v1")
    key = secret_refs(container)["BACKEND_API_KEY"]
    assert key == {"name": SECRET_NAME, "key": env_name("vllm_api_key")}
    assert not key.get("optional")


def test_every_backend_setting_is_in_its_configmap_or_secret(monkeypatch):
    docs, _, container = backend()
    config, secrets = set(config_map(docs, container)), set(secret_refs(container))
    expected = {backend_env_name(name) for name in BackendSettings.model_fields}
    assert config | secrets == expected | BACKEND_LIBRARY_VARIABLES
    assert not config & secrets
    values = {**config_map(docs, container), "BACKEND_API_KEY": "k"}
    settings = settings_from(BackendSettings, monkeypatch, expected, values)
    assert settings.model_name and settings.host == "0.0.0.0"


def test_production_namespace_enforces_restricted_pod_security():
    for target in (t for t in TARGETS if t != "base"):
        docs = render(target)
        (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
        name = namespace["metadata"]["name"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert all(d["metadata"].get("namespace") == name for d in docs if d is not namespace)
