"""`make run` (scripts/run_local.py) runs the product, its printed calls work, SIGTERM ends it.

Run as `make run` runs it, as a process, on port 0 and a temporary SQLite file; ready
when its own ready file appears (runtime.launcher). The printed curl GET is replayed with
urllib and the printed grpcurl GetExecution with a gRPC stub, both parsed from the output,
so an example that stops matching the servers fails here.
"""

from __future__ import annotations

import json
import shlex
import urllib.request
from pathlib import Path

import grpc
import pytest
from execgate.retrievers.v1 import execution_pb2, execution_service_pb2, execution_service_pb2_grpc
from google.protobuf import json_format

from gateway import cli as gateway_cli
from runtime.launcher import Child, python_module
from runtime.ready_file import GRPC, HTTP, METRICS
from scripts import run_local
from service.cli import STORE

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0  # seeding plus a server with a worker per CPU, on a busy machine


def _commands(output: str, program: str) -> list[list[str]]:
    """The printed command lines that start with `program`, continuation lines joined."""
    joined = output.replace("\\\n", " ")
    return [
        shlex.split(line)
        for line in joined.splitlines()
        if line.split()[:1] and line.split()[0].endswith(program)
    ]


def _headers(command: list[str]) -> dict[str, str]:
    pairs = [command[i + 1] for i, word in enumerate(command) if word == "-H"]
    return dict(pair.split(": ", 1) for pair in pairs)


def _replay_curl_get(output: str, http: str) -> dict[str, object]:
    command = next(c for c in _commands(output, "curl") if "/executions/" in c[-1])
    url = command[-1]
    assert url.startswith(f"http://{http}/v1/retrievers/")
    request = urllib.request.Request(url, headers=_headers(command))  # noqa: S310 (http://)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://)
        assert response.status == 200
        body: dict[str, object] = json.loads(response.read())
    return body


def _replay_grpcurl_get(output: str, target: str) -> execution_pb2.ExecutionDetail:
    command = next(c for c in _commands(output, "grpcurl") if c[-1].endswith("/GetExecution"))
    assert command[-2] == target
    request = json_format.Parse(
        command[command.index("-d") + 1], execution_service_pb2.GetExecutionRequest()
    )
    metadata = tuple(_headers(command).items())
    with grpc.insecure_channel(target) as channel:
        stub = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        response: execution_pb2.ExecutionDetail = stub.GetExecution(
            request, metadata=metadata, timeout=10
        )
    return response


DEMO = {
    "api_key": "demo-key",
    "namespace": {"name": "demo"},
    "retriever": {"id": "r-1", "name": "search"},
    "executions": {"completed_10": "e-10", "failed": "e-f", "processing": "e-p"},
}
LISTENING = {HTTP: "127.0.0.1:8080", GRPC: "127.0.0.1:50051", METRICS: "127.0.0.1:9464"}


def _printed(store: str, capsys: pytest.CaptureFixture[str]) -> str:
    settings = run_local.RunSettings(
        tiers=False,
        listen=LISTENING[HTTP],
        grpc_listen=LISTENING[GRPC],
        metrics_listen=LISTENING[METRICS],
        store=store,
        workers="",
        ready_file="",
    )
    run_local._print_examples(settings, DEMO, LISTENING)
    return capsys.readouterr().out


def test_a_store_password_is_printed_nowhere(capsys: pytest.CaptureFixture[str]) -> None:
    output = _printed("postgresql://execgate:s3cret-pw@db.example:5432/execgate", capsys)
    assert "s3cret-pw" not in output
    assert "postgresql://execgate:***@db.example:5432/execgate" in output
    drive = shlex.split(next(line for line in output.splitlines() if "demo drive" in line))
    assert drive[0] == "EXECGATE_STORE=postgresql://execgate:***@db.example:5432/execgate"
    assert "--store" not in drive


def test_the_drive_command_names_a_store_only_when_not_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    default = _commands(_printed(STORE.default, capsys), "execgate")
    assert next(c for c in default if "drive" in c)[1:] == [
        "demo",
        "drive",
        "--interval-seconds",
        "1",
    ]
    other = _commands(_printed("sqlite:////tmp/my execgate.db", capsys), "execgate")
    drive = next(c for c in other if "drive" in c)
    assert drive[-2:] == ["--store", "sqlite:////tmp/my execgate.db"]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["one-box", "tiers"])
def test_run_local_serves_its_printed_examples_and_stops_on_sigterm(
    tmp_path: Path, layout: str
) -> None:
    arguments = [
        "--store",
        f"sqlite:///{tmp_path / 'execgate.db'}",
        "--listen",
        "127.0.0.1:0",
        "--grpc-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]
    if layout == "tiers":
        arguments.append("--tiers")
    log = tmp_path / "run_local.log"
    run = Child("run_local", python_module("scripts.run_local", *arguments), cwd=REPO, log=log)
    try:
        ready = run.wait_ready(START_TIMEOUT_S)
        assert ready.pid == run.pid
        output = log.read_text()
        assert "Press Ctrl-C to stop." in output
        expected = "two tiers" if layout == "tiers" else "one box: `execgate serve`"
        assert expected in output
        # The viewer is pointed at exactly when the gateway has one.
        has_viewer = any(option.flag == "--ui" for option in gateway_cli.OPTIONS)
        assert ("/ui/" in output) == has_viewer

        detail = _replay_curl_get(output, ready.address(HTTP))
        assert detail["status"] == "completed"
        assert len(detail["documents"]) == 10  # type: ignore[arg-type]

        answer = _replay_grpcurl_get(output, ready.address(GRPC))
        assert answer.execution_id == detail["execution_id"]

        metrics = f"http://{ready.address(METRICS)}/metrics"
        with urllib.request.urlopen(metrics, timeout=10) as response:
            assert b"grpc_server_handled_total" in response.read()
    finally:
        status = run.stop(60)
    assert status == 0, log.read_text()[-3000:]
