"""docker-compose.yml stays consistent with pipeline.common.settings.Settings.

Docker cannot run here, so these checks are what keeps the compose file honest: every
STREAMFOLD_* variable is a real setting, the values validate, and hostnames point at
services that exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from deploy.roles import Role
from pipeline.common.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("api", "sinks", "commands", "validation")
PREFIX = "STREAMFOLD_"
# ${VAR:?message} / ${VAR:-default} / ${VAR}: compose interpolation, resolved at `up` time.
_INTERPOLATION = re.compile(r"^\$\{(?P<name>\w+)(?::?[?-](?P<arg>[^}]*))?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and "services" in data
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _concrete(name: str, value: str) -> str:
    """The value with compose interpolation replaced by a plausible concrete one."""
    match = _INTERPOLATION.match(value)
    if match is None:
        return value
    assert "?" in value, f"{name}: only required (${{VAR:?msg}}) interpolation is expected"
    return f"test-value-for-{match['name'].lower()}-0123456789abcdef"


def test_app_services_exist(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert name in compose["services"], name


@pytest.mark.parametrize("service", APP_SERVICES)
def test_env_names_are_settings_fields(compose: dict[str, Any], service: str) -> None:
    env = _environment(compose["services"][service])
    streamfold = [key for key in env if key.startswith(PREFIX)]
    assert streamfold, f"{service} has no {PREFIX}* environment"
    unknown = [key for key in streamfold if key[len(PREFIX) :].lower() not in Settings.model_fields]
    assert not unknown, f"{service}: not fields of Settings: {unknown}"


def test_api_publishes_its_configured_port(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    port = _environment(api)["STREAMFOLD_API_PORT"]
    published = [str(p).rsplit(":", 2)[-2:] for p in api.get("ports", [])]
    assert [port, port] in published, f"api ports {api.get('ports')} do not map {port}:{port}"
    assert _environment(api)["STREAMFOLD_API_HOST"] == "0.0.0.0", "must listen beyond loopback"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_hostnames_are_compose_services(compose: dict[str, Any], service: str) -> None:
    env = _environment(compose["services"][service])
    services = set(compose["services"])
    hosts = {
        "STREAMFOLD_KAFKA_BOOTSTRAP": [
            part.rsplit(":", 1)[0] for part in env["STREAMFOLD_KAFKA_BOOTSTRAP"].split(",")
        ],
        "STREAMFOLD_REDIS_URL": [urlsplit(env["STREAMFOLD_REDIS_URL"]).hostname],
        "STREAMFOLD_CLICKHOUSE_DSN": [urlsplit(env["STREAMFOLD_CLICKHOUSE_DSN"]).hostname],
    }
    for var, names in hosts.items():
        for host in names:
            assert host in services, f"{service}: {var} points at {host!r}, not a service"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_env_values_validate(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(compose["services"][service])
    # Only the compose values may count: drop any STREAMFOLD_* from the developer's shell.
    for key in [k for k in os.environ if k.startswith(PREFIX)]:
        monkeypatch.delenv(key)
    values = {key: _concrete(key, value) for key, value in env.items()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)

    settings = Settings()

    assert settings.env == "production"
    assert settings.kafka_bootstrap == values["STREAMFOLD_KAFKA_BOOTSTRAP"]
    assert settings.api_port == int(values["STREAMFOLD_API_PORT"])
    assert not settings.embedded_clickhouse, "containers must use the ClickHouse service"
    assert settings.jwt_secret is not None and settings.claims_key is not None
    assert settings.jwt_secret.get_secret_value() == values["STREAMFOLD_JWT_SECRET"]
    assert settings.claims_key.get_secret_value() == values["STREAMFOLD_CLAIMS_KEY"]
    # The same values passed as keyword arguments validate too.
    kwargs = {key[len(PREFIX) :].lower(): value for key, value in values.items()}
    assert Settings(**kwargs) == settings


def test_secrets_are_required(compose: dict[str, Any]) -> None:
    for service in APP_SERVICES:
        for name in ("STREAMFOLD_JWT_SECRET", "STREAMFOLD_CLAIMS_KEY"):
            secret = _environment(compose["services"][service])[name]
            assert _INTERPOLATION.match(secret) and ":?" in secret, f"{name} must be required"


def test_dockerfile_entrypoint_matches_commands(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["streamfold"]' in dockerfile
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE), "must not run as root"
    for service in APP_SERVICES:
        build = compose["services"][service].get("build", {})
        assert build.get("dockerfile") == "deploy/Dockerfile", service
        expected = ["api"] if service == "api" else ["worker", "--role", service]
        assert compose["services"][service]["command"] == expected
        if service != "api":
            assert service in {str(r) for r in Role}, service
