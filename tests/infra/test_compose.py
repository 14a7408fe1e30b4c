"""The compose file and the image, checked offline (no Docker engine here): N workers with
`docker compose up --scale worker=N`, the package installed once at build time, Grafana's
ClickHouse plugin pinned to the release the dashboards are written for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.panels import DATASOURCE_TYPE, PLUGIN_VERSION

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
VTOPS_SERVICES = ("setup", "worker", "simulator")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())  # `<<` merges too
    return dict(compose["services"])


def _dockerfile() -> list[str]:
    return (INFRA / "Dockerfile").read_text().splitlines()


def test_the_worker_scales_no_fixed_name_or_host_port(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert "hostname" not in worker
    assert worker["command"] == ["worker"] and worker["restart"] == "unless-stopped"
    # Its health comes from inside its own container, whatever port a sibling took.
    assert "127.0.0.1:9464/healthz" in " ".join(worker["healthcheck"]["test"])


def test_every_vtops_service_runs_the_built_image_without_installing(
    services: dict[str, Any],
) -> None:
    for name in VTOPS_SERVICES:
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "infra/Dockerfile"}, name
        assert service["image"] == "vtops:local", name
        assert "volumes" not in service, f"{name} mounts the source instead of using the image"
        run = " ".join(
            str(part) for key in ("command", "entrypoint") for part in service.get(key, [])
        )
        assert "pip" not in run, f"{name} installs at every start: {run}"
        assert service["environment"]["VTOPS_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_the_image_installs_the_package_once_and_runs_unprivileged() -> None:
    lines = _dockerfile()
    installs = [line for line in lines if re.match(r"RUN .*pip install", line)]
    assert installs, "the image never installs the package"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["vtops"]' in lines
    assert (ROOT / ".dockerignore").read_text().count(".venv") == 1


def test_the_image_copies_every_package_the_project_ships() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = {
        name.rstrip("*") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {line.split()[1] for line in _dockerfile() if line.startswith("COPY ")}
    assert shipped <= copied, f"not in the image: {shipped - copied}"


def test_grafana_is_pinned_with_the_plugin_the_dashboards_are_written_for(
    services: dict[str, Any],
) -> None:
    grafana = services["grafana"]
    image, _, tag = grafana["image"].partition(":")
    assert image == "grafana/grafana" and re.fullmatch(r"\d+\.\d+\.\d+", tag)
    assert int(tag.split(".")[0]) >= 12  # GF_PLUGINS_PREINSTALL_SYNC needs 12.1 or later
    plugins = grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert plugins == [f"{DATASOURCE_TYPE}@{PLUGIN_VERSION}"]
    assert "GF_INSTALL_PLUGINS" not in grafana["environment"]
