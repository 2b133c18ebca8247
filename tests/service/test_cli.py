"""The command line, run as users run it: `python -m service …` in a child process."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from execgate.retrievers.v1 import execution_pb2
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service import cli
from tests.support.running_service import auth, stubs
from tests.support.service_process import running

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`


def service_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_json_is_idempotent(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'var' / 'execgate.db'}"
    first = json_of(service_cli("demo", "--json", "--store", store))
    second = json_of(service_cli("demo", "--json", "--store", store))
    assert first == second
    assert first["namespace"]["name"] == "demo"
    assert first["namespace"]["id"].startswith("ns_")
    assert first["retriever"]["name"] == "product-search"
    assert first["retriever"]["id"].startswith("ret_")
    assert set(first["executions"]) == {
        "completed_10",
        "completed_1000",
        "failed",
        "processing",
        "pending",
    }
    key_file = tmp_path / "var" / "execgate.db.demo-key"
    assert key_file.read_text().strip() == first["api_key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    namespaces = json_of(service_cli("admin", "--store", store, "list-namespaces"))
    assert [n["name"] for n in namespaces] == ["demo"]


def test_demo_shell_exports_name_the_same_data_as_json(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shell.db'}"
    data = json_of(service_cli("demo", "--json", "--store", store))
    result = service_cli("demo", "--shell", "--store", store)
    assert result.returncode == 0, result.stderr
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()
    )
    assert exports["EXECGATE_DEMO_KEY"] == data["api_key"]
    assert exports["EXECGATE_DEMO_NAMESPACE"] == "demo"
    assert exports["EXECGATE_DEMO_RETRIEVER_ID"] == data["retriever"]["id"]
    assert exports["EXECGATE_DEMO_RETRIEVER"] == "product-search"
    for name, execution_id in data["executions"].items():
        assert exports[f"EXECGATE_DEMO_{name.upper()}"] == execution_id


def test_demo_uses_the_store_from_the_environment(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'env.db'}"
    result = service_cli("demo", env={"EXECGATE_STORE": store})
    assert result.returncode == 0, result.stderr
    assert "product-search" in result.stdout
    assert (tmp_path / "env.db").exists()


def test_admin_commands(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'admin.db'}"

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return service_cli("admin", "--store", store, *args)

    alpha = json_of(admin("create-namespace", "alpha"))
    beta = json_of(admin("create-namespace", "beta"))
    assert alpha["id"].startswith("ns_")
    retriever = json_of(admin("create-retriever", "--namespace", "alpha", "search"))
    assert retriever["namespace_id"] == alpha["id"]
    shown = json_of(admin("show-retriever", "--namespace", alpha["id"], "search"))
    assert shown == retriever
    key = json_of(
        admin(
            "create-key",
            "--namespace", "alpha",
            "--namespace", beta["id"],
            "--permission", "read",
            "--permission", "write",
        )
    )  # fmt: skip
    assert key["api_key"].startswith("egk_")
    assert key["namespace_ids"] == [alpha["id"], beta["id"]]
    assert key["permissions"] == ["read", "write"]
    assert {n["name"] for n in json_of(admin("list-namespaces"))} == {"alpha", "beta"}

    for args, message in [
        (("create-namespace", "alpha"), "alpha"),  # taken
        (("create-namespace", "ns_looks_like_an_id"), "invalid namespace name"),
        (("create-namespace", "has space"), "invalid namespace name"),
        (("create-retriever", "--namespace", "gamma", "x"), "no namespace 'gamma'"),
        (("create-retriever", "--namespace", "alpha", "search"), "search"),  # taken
        (("create-key", "--namespace", "gamma", "--permission", "read"), "no namespace"),
    ]:
        result = admin(*args)
        assert result.returncode == 1, args
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    # argparse refuses an unknown permission with its usage error.
    assert admin("create-key", "--namespace", "alpha", "--permission", "admin").returncode == 2


def test_admin_main_is_the_execgate_admin_entry_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'entry.db'}"
    assert cli.admin_main(["--store", store, "create-namespace", "solo"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "solo"


@pytest.mark.parametrize("args", [(), ("serve",), ("admin",), ("demo",), ("admin", "create-key")])
def test_help_everywhere(args: tuple[str, ...]) -> None:
    result = service_cli(*args, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")


def test_serve_defaults_are_documented() -> None:
    result = service_cli("serve", "--help")
    assert "127.0.0.1:50051" in result.stdout
    assert "sqlite:///var/execgate.db" in result.stdout
    assert "EXECGATE_LISTEN" in result.stdout


@pytest.mark.asyncio
async def test_serve_answers_then_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'serve.db'}"
    demo = json_of(service_cli("demo", "--json", "--store", store))
    with running(store, tmp_path / "serve.log", "--drain-seconds", "1") as service:
        async with grpc.aio.insecure_channel(service.address) as channel:
            detail = await stubs(channel).reader.GetExecution(
                service_pb2.GetExecutionRequest(
                    retriever_id="product-search", execution_id=demo["executions"]["failed"]
                ),
                metadata=auth(demo["api_key"]),
            )
            assert detail.status == execution_pb2.EXECUTION_STATUS_FAILED
            health = health_pb2_grpc.HealthStub(channel)
            service.process.send_signal(signal.SIGTERM)
            response = await health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            for _ in range(20):
                if response.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                response = await health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert service.process.wait(timeout=15) == 0
    log = service.log.read_text()
    assert "shutting down" in log
    assert demo["api_key"] not in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--store", "mysql://somewhere/db"), "unknown store URL scheme"),
        (("--listen", "no-such-host.invalid:1"), "cannot listen on"),
    ],
)
def test_serve_refuses_to_start_with_a_clear_message(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = service_cli(
        "serve", "--store", f"sqlite:///{tmp_path / 'x.db'}", *args, env={"EXECGATE_UVLOOP": "0"}
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def one_line_usage_error(result: subprocess.CompletedProcess[str], named: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert named in result.stderr


@pytest.mark.parametrize(
    ("args", "environ", "named"),
    [
        (("serve",), {"EXECGATE_GRACE_SECONDS": "abc"}, "EXECGATE_GRACE_SECONDS 'abc'"),
        (("serve",), {"EXECGATE_ACCESS_LOG": "maybe"}, "EXECGATE_ACCESS_LOG 'maybe'"),
        (("serve",), {"EXECGATE_UVLOOP": "2"}, "EXECGATE_UVLOOP '2'"),
        (("serve", "--log-level", "verbose"), {}, "--log-level 'verbose'"),
        (("serve", "--drain-seconds", "soon"), {}, "--drain-seconds 'soon'"),
        (("cluster", "--replicas", "x", "--store", "sqlite:///x.db"), {}, "--replicas 'x'"),
        (("cluster",), {"EXECGATE_STORE": ""}, "--store"),
        (("serve", "--watch-max-seconds", "-1"), {}, "--watch-max-seconds '-1'"),
        (("serve", "--watch-poll-seconds", "0"), {}, "--watch-poll-seconds '0'"),
        (("serve",), {"EXECGATE_MAX_WATCHERS": "0"}, "EXECGATE_MAX_WATCHERS '0'"),
        (("serve", "--max-in-flight", "0"), {}, "--max-in-flight '0'"),
        (("serve", "--rate-limit-burst", "0"), {}, "--rate-limit-burst '0'"),
        (("serve", "--rate-limit-per-second=-1"), {}, "--rate-limit-per-second '-1'"),
        (("demo", "drive", "--interval", "soon"), {}, "--interval 'soon'"),
        (("demo", "drive", "--interval-seconds", "-1"), {}, "--interval-seconds '-1'"),
    ],
)
def test_a_bad_setting_ends_with_one_line_naming_it_and_status_2(
    args: tuple[str, ...], environ: dict[str, str], named: str
) -> None:
    one_line_usage_error(service_cli(*args, env=environ), named)


@pytest.mark.parametrize(
    ("tls", "named"),
    [
        (("--tls-client-ca-file", "ca.pem"), "--tls-client-ca-file needs --tls-cert-file"),
        (("--tls-cert-file", "cert.pem"), "--tls-cert-file and --tls-key-file go together"),
        (("--tls-key-file", "key.pem"), "--tls-cert-file and --tls-key-file go together"),
    ],
)
def test_serve_refuses_tls_flags_that_would_leave_it_plaintext(
    tmp_path: Path, tls: tuple[str, ...], named: str
) -> None:
    # A free port and its own store: were it to serve, it would time out, not clash.
    store = f"sqlite:///{tmp_path / 'x.db'}"
    result = service_cli("serve", "--listen", "127.0.0.1:0", "--store", store, *tls)
    one_line_usage_error(result, named)


@pytest.mark.parametrize("command", ["serve", "demo", "admin", "cluster"])
def test_help_does_not_read_a_bad_environment(command: str) -> None:
    bad = {"EXECGATE_GRACE_SECONDS": "abc", "EXECGATE_ACCESS_LOG": "maybe", "EXECGATE_UVLOOP": "?"}
    result = service_cli(command, "--help", env=bad)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


@pytest.mark.parametrize(("burst", "reason"), [("0", "expected 1 to 1000000"), ("x", "whole")])
def test_admin_create_key_names_why_a_burst_is_refused(
    burst: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["create-key", "--namespace", "acme", "--rate-per-second", "1", "--burst", burst]
    with pytest.raises(SystemExit) as exit_info:
        cli._admin_parser().parse_args(arguments)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("execgate-admin create-key: error: argument --burst:"), error
    assert reason in error


def test_admin_store_goes_before_or_after_the_command(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'either.db'}"
    after = json_of(service_cli("admin", "create-namespace", "acme", "--store", store))
    assert after["name"] == "acme"
    names = json_of(service_cli("admin", "--store", store, "list-namespaces"))
    assert [n["name"] for n in names] == ["acme"]
    listed_after = json_of(service_cli("admin", "list-namespaces", "--store", store))
    assert listed_after == names


@pytest.mark.parametrize(
    ("environ", "loop"),
    [
        ({"EXECGATE_UVLOOP": "off", "EXECGATE_LOG_LEVEL": "debug"}, "asyncio"),
        ({"EXECGATE_UVLOOP": "on", "EXECGATE_LOG_LEVEL": "Info"}, "uvloop"),
    ],
)
def test_serve_reads_booleans_and_log_levels_like_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], loop: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    store = f"sqlite:///{tmp_path / 'loop.db'}"
    with running(store, tmp_path / "loop.log") as service:
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=15) == 0
    records = [json.loads(line) for line in service.log.read_text().splitlines()]
    assert all({"ts", "level", "logger", "msg"} <= set(record) for record in records)
    listening = [r["msg"] for r in records if "listening on" in r["msg"]]
    assert listening
    assert f"event loop {loop}" in listening[0]
    debug = any(record["level"] == "debug" for record in records)
    assert debug == (environ["EXECGATE_LOG_LEVEL"] == "debug")


def test_demo_drive_completes_an_execution_and_refuses_a_finished_one(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'drive.db'}"
    executions = json_of(service_cli("demo", "--store", store, "--json"))["executions"]
    driven = service_cli("demo", "drive", "--store", store, "--interval-seconds", "0")
    assert driven.returncode == 0, driven.stderr
    assert driven.stdout.splitlines()[0] == f"execution {executions['processing']}"
    assert driven.stdout.splitlines()[-1].strip() == "completed"
    again = service_cli("demo", "drive", "--store", store, "--interval-seconds", "0")
    assert again.returncode == 1
    assert "already completed" in again.stderr
    fresh = service_cli(
        "demo", "drive", "--store", store, "--interval-seconds", "0", "--execution", "new"
    )
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split()[1] not in executions.values()
