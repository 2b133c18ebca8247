"""deploy/kubernetes/: every manifest validates offline against the Kubernetes schemas
(kubernetes-validate ships them; strict: an unknown field fails), every kustomization
lists every manifest of its directory, and each Deployment has what docs/deployment.md
asks: gRPC and HTTP probes, resources, a disruption budget, the store URL from a Secret,
commands and variables `execgate` knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.execgate_commands import all_variables, parses, variables_of

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUSTOMIZATIONS = sorted(KUBERNETES.glob("*/kustomization.yaml"))
MANIFESTS = sorted(p for p in KUBERNETES.glob("*/*.yaml") if p.name != "kustomization.yaml")
# The oldest Kubernetes the manifests promise, and the newest the validator knows.
VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
DEPLOYMENTS = ("two-tiers", "single")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _resources(directory: str) -> list[dict[str, Any]]:
    """What `kustomize build deploy/kubernetes/DIRECTORY` would emit (before images:)."""
    found: list[dict[str, Any]] = []
    base = KUBERNETES / directory
    for entry in _documents(base / "kustomization.yaml")[0]["resources"]:
        target = (base / entry).resolve()
        if target.is_dir():
            found += _resources(str(target.relative_to(KUBERNETES)))
        else:
            found += _documents(target)
    return found


def _of_kind(directory: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in _resources(directory) if r["kind"] == kind]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def test_there_is_something_to_check() -> None:
    assert {p.parent.name for p in KUSTOMIZATIONS} == {"common", *DEPLOYMENTS}
    assert len(MANIFESTS) >= 10


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_validates_against_the_kubernetes_schema(path: Path, version: str) -> None:
    for document in _documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_schema_check_can_fail() -> None:
    deployment = _of_kind("two-tiers", "Deployment")[0]
    _containers(deployment)[0]["livenessProbe"]["grpcc"] = {"port": 50051}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: p.parent.name)
def test_kustomization_lists_every_file_of_its_directory(kustomization: Path) -> None:
    listed = _documents(kustomization)[0]["resources"]
    files = {entry for entry in listed if not entry.startswith("../")}
    present = {p.name for p in kustomization.parent.glob("*.yaml")} - {kustomization.name}
    assert files == present
    for entry in listed:
        assert (kustomization.parent / entry).exists(), entry


@pytest.mark.parametrize("directory", DEPLOYMENTS)
def test_deployments_probe_over_grpc_and_http_and_have_resources(directory: str) -> None:
    probes: set[str] = set()
    for deployment in _of_kind(directory, "Deployment"):
        for container in _containers(deployment):
            assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probes |= set(container[kind]) & {"grpc", "httpGet", "tcpSocket"}
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    assert {"grpc", "httpGet"} <= probes


@pytest.mark.parametrize("directory", DEPLOYMENTS)
def test_every_deployment_has_a_disruption_budget(directory: str) -> None:
    budgets = [
        b["spec"]["selector"]["matchLabels"] for b in _of_kind(directory, "PodDisruptionBudget")
    ]
    for deployment in _of_kind(directory, "Deployment"):
        assert deployment["spec"]["selector"]["matchLabels"] in budgets


@pytest.mark.parametrize("directory", DEPLOYMENTS)
def test_a_headless_service_selects_the_grpc_pods(directory: str) -> None:
    headless = [s for s in _of_kind(directory, "Service") if s["spec"].get("clusterIP") == "None"]
    assert len(headless) == 1
    selected = headless[0]["spec"]["selector"]
    grpc_pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in _of_kind(directory, "Deployment")
        if any(p["name"] == "grpc" for c in _containers(d) for p in c["ports"])
    ]
    assert grpc_pods
    assert all(selected.items() <= labels.items() for labels in grpc_pods)


def test_gateways_balance_over_the_headless_service() -> None:
    settings = _of_kind("two-tiers", "ConfigMap")[0]["data"]
    name = next(
        s["metadata"]["name"]
        for s in _of_kind("two-tiers", "Service")
        if s["spec"].get("clusterIP") == "None"
    )
    assert settings["EXECGATE_GATEWAY_BACKEND"] == f"dns:///{name}:50051"


@pytest.mark.parametrize("directory", DEPLOYMENTS)
def test_the_store_url_comes_from_a_secret_never_from_args(directory: str) -> None:
    for deployment in _of_kind(directory, "Deployment"):
        for container in _containers(deployment):
            assert all("postgres" not in arg for arg in container["args"])
            env = {e["name"]: e for e in container.get("env", [])}
            if container["args"][0] == "gateway":
                assert "EXECGATE_STORE" not in env  # the gateway never sees the database
                continue
            assert env["EXECGATE_STORE"]["valueFrom"]["secretKeyRef"]["key"] == "url"
            assert "value" not in env["EXECGATE_STORE"]


@pytest.mark.parametrize("directory", DEPLOYMENTS)
def test_commands_and_variables_are_execgate_s(directory: str) -> None:
    settings = _of_kind(directory, "ConfigMap")[0]["data"]
    assert set(settings) <= all_variables()
    assert "EXECGATE_STORE" not in settings
    for deployment in _of_kind(directory, "Deployment"):
        for container in _containers(deployment):
            parses(container["args"])
            own = {e["name"] for e in container.get("env", [])}
            assert own <= variables_of(container["args"][0])
