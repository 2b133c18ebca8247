"""`make run`: the product on this machine, deployed as on one box, in the foreground.

Seeds the demo data into the embedded SQLite store (idempotent), starts `execgate serve
--workers auto` (single-process mode: REST calls the service in process, gRPC is also
served for internal clients and grpcurl, a worker per CPU on each port), waits until it
listens, prints curl and grpcurl calls that work verbatim, and stops it on Ctrl-C or
SIGTERM (it drains, then exits 0).

`--tiers` (`make run-tiers`) runs the two-tier layout instead: `execgate service` and
`execgate gateway` as two processes, the gateway calling the service over gRPC, as
deployed when the two halves scale apart (docs/deployment.md).

Every setting is a flag with an environment variable (`runtime.settings`); the address
variables are the ones the servers themselves read. Port 0 picks free ports: the
examples show the ones the servers report in their ready files (`runtime.launcher`),
and `--ready-file` passes them on once everything listens (the test does this).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from gateway import cli as gateway_cli
from observability.redaction import redact
from runtime import settings as runtime_settings
from runtime.cpus import parse_workers
from runtime.launcher import Child, LaunchError, Ready, python_module
from runtime.ready_file import GRPC, HTTP, METRICS, write_ready_file
from runtime.settings import CommandParser, Setting, boolean, text
from service.cli import STORE as SERVICE_STORE

STARTUP_TIMEOUT_S: Final = 60.0  # several workers, on a busy machine
STOP_TIMEOUT_S: Final = 30.0  # after SIGTERM, before SIGKILL: the servers drain first
_POLL_S: Final = 0.2


def _workers(raw: str) -> str:
    if raw.strip():
        parse_workers(raw)  # refuses what the servers would refuse, before starting any
    return raw.strip()


OPTIONS: Final[tuple[Setting[Any], ...]] = (
    Setting(
        "--tiers", "EXECGATE_RUN_TIERS", boolean, False, "gateway and service as two processes"
    ),
    Setting(
        "--listen",
        "EXECGATE_GATEWAY_LISTEN",
        text,
        "127.0.0.1:8080",
        "REST address (port 0: a free port)",
        "HOST:PORT",
    ),
    Setting(
        "--grpc-listen",
        "EXECGATE_LISTEN",
        text,
        "127.0.0.1:50051",
        "gRPC address (port 0: a free port)",
        "HOST:PORT",
    ),
    Setting(
        "--metrics-listen",
        "EXECGATE_METRICS_LISTEN",
        text,
        "127.0.0.1:9464",
        "the service's Prometheus /metrics address",
        "HOST:PORT",
    ),
    Setting("--store", "EXECGATE_STORE", text, SERVICE_STORE.default, "store URL", "URL"),
    Setting(
        "--workers",
        "EXECGATE_RUN_WORKERS",
        _workers,
        "",
        "processes per server: N or auto (off: auto on one box, 1 per tier with --tiers)",
        "N|auto",
    ),
    Setting(
        "--ready-file",
        "EXECGATE_RUN_READY_FILE",
        text,
        "",
        "once everything listens, write {pid, http, grpc, metrics} here as JSON",
        "PATH",
    ),
)


@dataclass(frozen=True, slots=True)
class RunSettings:
    tiers: bool
    listen: str
    grpc_listen: str
    metrics_listen: str
    store: str
    workers: str
    ready_file: str


def parse_settings(argv: Sequence[str] | None) -> RunSettings:
    parser = CommandParser(
        prog="python -m scripts.run_local",
        description="Run execgate on this machine with the demo data (what `make run` does).",
    )
    return RunSettings(**runtime_settings.parse_settings(parser, OPTIONS, argv))


def _ensure_port_free(address: str, name: str) -> None:
    host, port = address.rsplit(":", 1)
    if int(port) == 0:
        return
    with socket.socket() as probe:
        if probe.connect_ex((host.strip("[]"), int(port))) == 0:
            sys.exit(
                f"{address} is already in use, so the {name} cannot start there. "
                f"Stop what is using it, or pick another address (--help)."
            )


def _child_env(settings: RunSettings) -> dict[str, str]:
    # The store URL may hold a password: children get it in their environment, never in
    # their arguments (which anyone can read in `ps`).
    return {**os.environ, "EXECGATE_STORE": settings.store}


def _seed_demo(settings: RunSettings) -> dict[str, Any]:
    output = subprocess.run(
        python_module("service", "demo", "--json"),
        env=_child_env(settings),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    demo: dict[str, Any] = json.loads(output)
    return demo


def _venv_tool(name: str) -> str:
    # `make run` does not activate the venv: name the venv's tool unless one is on PATH.
    if shutil.which(name):
        return name
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else f"{sys.executable} -m runtime.main"


def _start_one_box(settings: RunSettings) -> list[Child]:
    serve = Child(
        "serve",
        python_module(
            "runtime.main",
            "serve",
            "--listen",
            settings.listen,
            "--grpc-listen",
            settings.grpc_listen,
            "--metrics-listen",
            settings.metrics_listen,
            "--workers",
            settings.workers or "auto",
        ),
        env=_child_env(settings),
    )
    return [serve]


def _start_tiers(settings: RunSettings, children: list[Child]) -> None:
    """Appends each child as it starts, so that a failure still stops the ones started."""
    workers = settings.workers or "1"
    service = Child(
        "service",
        python_module(
            "runtime.main",
            "service",
            "--listen",
            settings.grpc_listen,
            "--metrics-listen",
            settings.metrics_listen,
            "--workers",
            workers,
        ),
        env=_child_env(settings),
    )
    children.append(service)
    backend = service.wait_ready(STARTUP_TIMEOUT_S).address(GRPC)
    gateway = Child(
        "gateway",
        python_module(
            "runtime.main",
            "gateway",
            "--listen",
            settings.listen,
            "--backend",
            backend,
            "--workers",
            workers,
        ),
        env=_child_env(settings),
    )
    children.append(gateway)


def _addresses(children: Sequence[Child]) -> dict[str, str]:
    """Every listener of the started servers, once all of them listen."""
    listening: dict[str, str] = {}
    for child in children:
        ready: Ready = child.wait_ready(STARTUP_TIMEOUT_S)
        listening.update(ready.addresses)
    return listening


def _serves_viewer() -> bool:
    """Whether the gateway serves the execution viewer (`/ui/`), to point at it only then:
    a gateway with a `--ui` setting that the environment did not turn off."""
    setting = next((o for o in gateway_cli.OPTIONS if o.flag == "--ui"), None)
    try:
        return setting is not None and bool(setting.value(argparse.Namespace(), os.environ))
    except ValueError:  # a bad EXECGATE_GATEWAY_UI: the gateway itself reports it
        return False


def _drive_command(execgate: str, store: str) -> str:
    """`demo drive` on the servers' store, with no password in this output or on a command
    line: no `--store` for the default store, the URL in the environment if it has one."""
    drive = f"{execgate} demo drive --interval-seconds 1"
    if store == SERVICE_STORE.default:
        return drive
    if redact(store) == store:
        return f"{drive} --store {shlex.quote(store)}"
    return (
        "# (put the store's password in place of ***, or name a file holding the URL in\n"
        "  # EXECGATE_STORE_FILE instead)\n"
        f"  EXECGATE_STORE={shlex.quote(redact(store))} {drive}"
    )


def _print_examples(
    settings: RunSettings, demo: dict[str, Any], listening: Mapping[str, str]
) -> None:
    key = demo["api_key"]
    namespace = demo["namespace"]["name"]
    retriever = demo["retriever"]
    executions = demo["executions"]
    base = f"http://{listening[HTTP]}"
    grpc = listening[GRPC]
    metrics = listening[METRICS]
    auth = f"-H 'Authorization: Bearer {key}' -H 'X-Namespace: {namespace}'"
    grpc_auth = f"-H 'authorization: Bearer {key}' -H 'x-namespace: {namespace}'"
    get_body = json.dumps(
        {"retriever_id": retriever["name"], "execution_id": executions["completed_10"]}
    )
    execgate, grpcurl = _venv_tool("execgate"), _venv_tool("grpcurl")
    layout = (
        "two tiers: gateway and service as two processes"
        if settings.tiers
        else "one box: `execgate serve`, gateway and service in one process"
    )
    viewer = (
        f"""
  # the execution viewer: sign in with namespace {namespace} and the key above
  open {base}/ui/#/retrievers/{retriever["name"]} in a browser
"""
        if _serves_viewer()
        else ""
    )
    print(
        f"""
execgate is up ({layout}, --workers {settings.workers or ("1" if settings.tiers else "auto")}):
  REST             {base}  (also /metrics, /readyz, /openapi.json, /docs)
  gRPC             {grpc}  (reflection and health, for grpcurl and internal clients)
  service metrics  http://{metrics}/metrics
  store            {redact(settings.store)}

Try (copy and paste):

  # an execution, with the retriever named by ID or by name
  curl -s {auth} {base}/v1/retrievers/{retriever["id"]}/executions/{executions["completed_10"]}
  curl -s {auth} {base}/v1/retrievers/{retriever["name"]}/executions/{executions["failed"]}

  # list a retriever's executions, newest first
  curl -s {auth} -H 'Content-Type: application/json' \\
       -X POST '{base}/v1/retrievers/{retriever["name"]}/executions/list?limit=2' \\
       -d '{{"status": "completed"}}'

  # watch the in-flight execution live (Server-Sent Events) ...
  curl -sN -H 'Accept: text/event-stream' {auth} \\
       {base}/v1/retrievers/{retriever["name"]}/executions/{executions["processing"]}:watch
  # ... while, in another terminal, this moves it forward one step a second
  # (once it has completed, add --execution new: a fresh one, its ID printed first)
  {_drive_command(execgate, settings.store)}

  # the same over gRPC
  {grpcurl} -plaintext {grpc} list
  {grpcurl} -plaintext {grpc_auth} \\
       -d '{get_body}' \\
       {grpc} execgate.retrievers.v1.ExecutionService/GetExecution

  # the API description and operations endpoints
  curl -s {base}/openapi.json | head -c 300; echo
  curl -s {base}/readyz; echo
  curl -s {base}/metrics | grep http_requests_total
  curl -s http://{metrics}/metrics | grep grpc_server_handled_total
  open {base}/docs in a browser
{viewer}
Execution IDs by status: {json.dumps(executions)}
Press Ctrl-C to stop.
""",
        flush=True,
    )


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that `main`'s clean-up stops the servers


def _exit(message: str) -> NoReturn:
    print(f"run_local: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def _stop(children: Sequence[Child]) -> list[str]:
    """SIGTERM each (the gateway first, while the service still answers its calls): they
    finish in-flight work and exit. The children that did not exit 0, described."""
    # A second Ctrl-C must not cut the clean-up short and leave servers behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    failed = []
    for child in reversed(children):
        was_running = child.running  # one that exited by itself is reported already
        status = child.stop(STOP_TIMEOUT_S)
        if was_running and status != 0:
            failed.append(f"{child.name} exited with status {status}")
    return failed


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    _ensure_port_free(settings.listen, "REST gateway")
    _ensure_port_free(settings.grpc_listen, "gRPC service")
    _ensure_port_free(settings.metrics_listen, "service's metrics endpoint")
    demo = _seed_demo(settings)
    children: list[Child] = []
    problem = ""
    try:
        if settings.tiers:
            _start_tiers(settings, children)
        else:
            children.extend(_start_one_box(settings))
        listening = _addresses(children)
        _print_examples(settings, demo, listening)
        write_ready_file(settings.ready_file, listening)
        while all(child.running for child in children):
            time.sleep(_POLL_S)
        exited = next(child for child in children if not child.running)
        problem = f"{exited.name} exited by itself with status {exited.returncode}"
    except LaunchError as error:
        problem = str(error)
    except KeyboardInterrupt:
        pass
    finally:
        failed = _stop(children)
    if problem or failed:
        _exit("; ".join([problem, *failed] if problem else failed))


if __name__ == "__main__":
    main()
