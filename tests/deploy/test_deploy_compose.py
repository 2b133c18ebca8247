"""deploy/compose.yaml: valid against the Compose specification's JSON schema (the copy
check-jsonschema ships, so offline), and the rules the file promises: health checks and
health-conditioned start order, the password only from the environment or a secret file,
commands and variables that `execgate` knows."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.execgate_commands import parses, variables_of

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
PASSWORD_VARIABLE = "EXECGATE_DB_PASSWORD"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the << merges
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _execgate_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if "build" in s}


def _compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


def test_compose_file_matches_the_compose_specification() -> None:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []


def test_the_schema_check_can_fail() -> None:
    schema = _compose_schema()
    broken = _compose()
    broken["services"]["gateway"]["healthcheck"]["interval"] = ["not", "a", "duration"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_postgres_replicas_gateway_and_the_single_process_alternative() -> None:
    services = _services()
    assert {"postgres", "service", "gateway", "single"} <= set(services)
    assert services["service"]["deploy"]["replicas"] > 1
    assert services["single"]["profiles"] == ["single"]
    # The gateway balances over every replica: a DNS target, not one address.
    backend = services["gateway"]["environment"]["EXECGATE_GATEWAY_BACKEND"]
    assert backend == "dns:///service:50051"


@pytest.mark.parametrize("name", ["postgres", "service", "gateway", "single"])
def test_every_long_running_service_has_a_health_check(name: str) -> None:
    check = _services()[name]["healthcheck"]["test"]
    assert check[0] == "CMD"
    if name != "postgres":
        assert check[1:3] == ["python", "/opt/execgate/healthcheck.py"]


@pytest.mark.parametrize("name", ["service", "gateway", "single", "demo"])
def test_start_order_waits_for_health(name: str) -> None:
    depends_on = _services()[name]["depends_on"]
    assert depends_on, name
    assert all(d["condition"] == "service_healthy" for d in depends_on.values())


def test_the_password_comes_only_from_the_environment_or_a_secret_file() -> None:
    compose = _compose()
    assert compose["secrets"]["db_password"] == {"environment": PASSWORD_VARIABLE}
    postgres = compose["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    for name, service in _execgate_services().items():
        environment = service["environment"]
        store = environment.get("EXECGATE_STORE", "")
        assert ":" not in store.removeprefix("postgresql://").split("@")[0], name
        assert all("pass" not in str(arg).lower() for arg in service["command"]), name
        if "PGPASSWORD" in environment:
            assert environment["PGPASSWORD"].startswith("${" + PASSWORD_VARIABLE + ":?")
    # The gateway never reaches the database: it does not get the password at all.
    assert "PGPASSWORD" not in _services()["gateway"]["environment"]


@pytest.mark.parametrize("name", ["service", "gateway", "single", "demo"])
def test_commands_and_variables_are_execgate_s(name: str) -> None:
    service = _services()[name]
    command = service["command"]
    parses(command)
    unknown = {
        variable
        for variable in service.get("environment", {})
        if variable.startswith("EXECGATE_") and variable not in variables_of(command[0])
    }
    assert unknown == set()
