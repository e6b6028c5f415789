"""deploy/k8s stays consistent with the code it deploys.

No cluster runs here, so these checks keep the manifests honest: one Deployment per
`Role` whose args the real CLI parses, ConfigMap keys that are settings, the same
variables as docker-compose.yml split into ConfigMap and Secret, probes on routes the
API has, and metrics ports the processes serve.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import typer
import yaml
from fastapi import FastAPI

from api.app import create_api
from api.deps import Services
from deploy import cli
from deploy.roles import Role
from deploy.supervisor import STOP_TIMEOUT_S
from pipeline.common.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
PREFIX = Settings.model_config["env_prefix"]
NAMESPACE = "streamfold"
# what a deployer may change without this test having a say
REPLICAS = {Role.API: 2, Role.VALIDATION: 2, Role.COMMANDS: 1, Role.SINKS: 1}
_INTERPOLATION = re.compile(r"\$\{\w+(?::?[?-][^}]*)?\}")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    (data,) = _documents(K8S / "kustomization.yaml")
    return data


@pytest.fixture(scope="module")
def manifests(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    docs = []
    for name in kustomization["resources"]:
        docs.extend(_documents(K8S / name))
    return docs


def _of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


@pytest.fixture(scope="module")
def deployments(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = _of_kind(manifests, "Deployment")
    by_name = {d["metadata"]["name"]: d for d in found}
    assert len(by_name) == len(found), "two Deployments share a name"
    return by_name


@pytest.fixture(scope="module")
def config(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = _of_kind(manifests, "ConfigMap")
    return configmap


@pytest.fixture(scope="module")
def secret() -> dict[str, Any]:
    (data,) = _documents(SECRET_EXAMPLE)
    assert data["kind"] == "Secret"
    return data


@pytest.fixture(scope="module")
def compose_env() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return {str(k): str(v) for k, v in compose["x-streamfold-env"].items()}


@pytest.fixture(scope="module")
def api_app() -> FastAPI:
    """The real app factory's app: it only keeps the services it is given, so none has
    to run as long as no route that uses them is called."""
    services = Services(
        settings=Settings(env="test"),
        clickhouse=None,  # type: ignore[arg-type]
        redis=None,  # type: ignore[arg-type]
        bus=None,  # type: ignore[arg-type]
        keys=None,  # type: ignore[arg-type]
        ingest=None,  # type: ignore[arg-type]
    )
    return create_api(services)


@pytest.fixture(scope="module")
def get_paths(api_app: FastAPI) -> set[str]:
    """Paths the API answers GET on, from its OpenAPI schema (FastAPI's public view of
    its routes; ``app.routes`` holds opaque included routers in FastAPI 0.165)."""
    return {path for path, ops in api_app.openapi()["paths"].items() if "get" in ops}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _role_of(deployment: dict[str, Any]) -> Role:
    return Role(deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {**secret.get("data", {}), **secret.get("stringData", {})}


def _parse_cli(args: list[str]) -> dict[str, Any]:
    """The parameters the real `streamfold` CLI makes of ``args``, without running it:
    click converts and checks every option (an unknown role raises BadParameter)."""
    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    name, *rest = args
    command = group.commands[name]
    with command.make_context(name, rest) as ctx:
        return dict(ctx.params)


def test_resources_load_and_exclude_the_secret(kustomization: dict[str, Any]) -> None:
    assert kustomization["namespace"] == NAMESPACE
    resources = kustomization["resources"]
    assert SECRET_EXAMPLE.name not in resources, "the placeholder would replace the secret"
    listed = {K8S / name for name in resources}
    on_disk = {p for p in K8S.glob("*.yaml") if p.name not in {"kustomization.yaml"}}
    assert on_disk - listed == {SECRET_EXAMPLE}, "a manifest is not in kustomization.yaml"


def test_everything_is_in_the_namespace(manifests: list[dict[str, Any]]) -> None:
    (namespace,) = _of_kind(manifests, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    # also when applied with `kubectl apply -f` rather than -k
    for m in manifests:
        if m["kind"] != "Namespace":
            assert m["metadata"].get("namespace") == NAMESPACE, m["metadata"]["name"]


def test_one_deployment_per_role(deployments: dict[str, dict[str, Any]]) -> None:
    assert sorted(_role_of(d) for d in deployments.values()) == sorted(Role)
    for name, deployment in deployments.items():
        assert name == _role_of(deployment)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), f"{name}: selector misses its pods"
        assert deployment["spec"]["replicas"] == REPLICAS[_role_of(deployment)], name


@pytest.mark.parametrize("role", list(Role))
def test_args_are_what_the_cli_accepts(deployments: dict[str, dict[str, Any]], role: Role) -> None:
    container = _container(deployments[role])
    # the image's ENTRYPOINT is `streamfold`: `command` would replace it
    assert "command" not in container
    args = container["args"]
    params = _parse_cli(args)
    if role is Role.API:
        assert args == ["api"]
    else:
        # `worker --role api` parses but is refused when it runs
        assert args[0] == "worker" and params["role"] is role


def test_args_mirror_compose(deployments: dict[str, dict[str, Any]]) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, deployment in deployments.items():
        service = compose["services"][name]
        assert _container(deployment)["args"] == service["command"], name
        assert _container(deployment)["image"] == service["image"], name


def test_configmap_keys_are_settings_fields(config: dict[str, Any]) -> None:
    keys = list(config["data"])
    assert keys
    unknown = [k for k in keys if not k.startswith(PREFIX)
               or k[len(PREFIX):].lower() not in Settings.model_fields]  # fmt: skip
    assert not unknown, f"not fields of Settings: {unknown}"


def test_secret_keys_are_settings_fields(secret: dict[str, Any]) -> None:
    keys = list(_secret_data(secret))
    unknown = [k for k in keys if not k.startswith(PREFIX)
               or k[len(PREFIX):].lower() not in Settings.model_fields]  # fmt: skip
    assert not unknown, f"not fields of Settings: {unknown}"


def test_same_variables_as_compose_split_by_secrecy(
    config: dict[str, Any], secret: dict[str, Any], compose_env: dict[str, str]
) -> None:
    plain, hidden = set(config["data"]), set(_secret_data(secret))
    assert not plain & hidden, f"in both ConfigMap and Secret: {plain & hidden}"
    assert plain | hidden == set(compose_env)
    # compose takes its secrets from the operator's shell (${VAR:?...}); so does the Secret
    from_shell = {k for k, v in compose_env.items() if _INTERPOLATION.search(v)}
    assert hidden == from_shell


def test_deployments_read_the_configmap_and_the_secret(
    deployments: dict[str, dict[str, Any]], config: dict[str, Any], secret: dict[str, Any]
) -> None:
    keys = set(_secret_data(secret))
    for name, deployment in deployments.items():
        container = _container(deployment)
        sources = container["envFrom"]
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources, name
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in sources, name
        assert len(sources) == 2, name
        # any single key taken on its own must be one the example lists
        for var in container.get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == secret["metadata"]["name"], name
                assert ref["key"] in keys, f"{name}: {ref['key']} not in the Secret"


def test_values_validate(
    config: dict[str, Any], secret: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith(PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in {**config["data"], **_secret_data(secret)}.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.env == "production"
    assert not settings.embedded_clickhouse, "pods must share one ClickHouse server"
    assert settings.jwt_secret is not None and settings.claims_key is not None
    assert settings.analyst_clickhouse_dsn.startswith(("http://", "https://"))
    assert settings.api_host == "0.0.0.0", "must listen beyond loopback"
    assert settings.metrics_port > 0


def test_hosts_are_the_compose_service_names(config: dict[str, Any]) -> None:
    data = config["data"]
    hosts = {
        *(part.rsplit(":", 1)[0] for part in data[f"{PREFIX}KAFKA_BOOTSTRAP"].split(",")),
        urlsplit(data[f"{PREFIX}REDIS_URL"]).hostname,
        urlsplit(data[f"{PREFIX}CLICKHOUSE_DSN"]).hostname,
    }
    assert hosts == {"kafka", "redis", "clickhouse"}


def test_api_probes_hit_real_routes(
    deployments: dict[str, dict[str, Any]], get_paths: set[str], config: dict[str, Any]
) -> None:
    container = _container(deployments[Role.API])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(config["data"][f"{PREFIX}API_PORT"])
    # readiness is this pod's, not the pipeline's: ingestion must survive a ClickHouse outage
    probes = {
        "readinessProbe": "/healthz",
        "livenessProbe": "/healthz",
        "startupProbe": "/healthz",
    }
    for probe, expected in probes.items():
        get = container[probe]["httpGet"]
        assert get["path"] == expected, probe
        assert get["path"] in get_paths, f"{probe}: no GET route {get['path']}"
        assert get["port"] in ports or get["port"] in ports.values(), probe


def test_api_service_and_budget(
    manifests: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]
) -> None:
    api = deployments[Role.API]
    labels = api["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in _container(api)["ports"]}
    (service,) = _of_kind(manifests, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    (budget,) = _of_kind(manifests, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # a budget of every replica would block every node drain
    assert 0 < budget["spec"]["minAvailable"] < api["spec"]["replicas"]


@pytest.mark.parametrize("role", list(Role))
async def test_metrics_are_scraped_where_served(
    deployments: dict[str, dict[str, Any]],
    config: dict[str, Any],
    api_app: FastAPI,
    role: Role,
) -> None:
    deployment = deployments[role]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    # the API serves /metrics itself; the workers on STREAMFOLD_METRICS_PORT
    expected = config["data"][f"{PREFIX}API_PORT" if role is Role.API else f"{PREFIX}METRICS_PORT"]
    assert annotations["prometheus.io/port"] == expected
    ports = {str(p["containerPort"]) for p in _container(deployment)["ports"]}
    assert expected in ports
    if role is Role.API:
        # not in the schema (include_in_schema=False), and it needs no service: ask it
        transport = httpx.ASGITransport(app=api_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get(annotations["prometheus.io/path"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("role", list(Role))
def test_grace_period_covers_a_clean_stop(
    deployments: dict[str, dict[str, Any]], role: Role
) -> None:
    spec = deployments[role]["spec"]["template"]["spec"]
    pre_stop = _container(deployments[role]).get("lifecycle", {}).get("preStop", {})
    pause = pre_stop.get("exec", {}).get("command", ["sleep", "0"])
    assert pause[0] == "sleep"
    # what the supervisor gives a role to flush, commit and leave, after any preStop pause
    assert spec["terminationGracePeriodSeconds"] > STOP_TIMEOUT_S + float(pause[1])


def test_worker_replicas_within_partitions(deployments: dict[str, dict[str, Any]]) -> None:
    # more consumer-group members than partitions stay idle
    partitions = Settings.model_fields["topic_partitions"].default
    for role in (Role.SINKS, Role.COMMANDS, Role.VALIDATION):
        assert deployments[role]["spec"]["replicas"] <= partitions, role
