"""`make run`: the whole product on this machine, in the foreground.

Seeds the demo data into the embedded SQLite store (idempotent), starts the gRPC
service and the REST gateway as two processes, waits until both answer, prints
curl and grpcurl calls that work verbatim, and stops both on Ctrl-C (or when
either exits).

Ports and the store come from the same environment variables the two servers
read (`EXECGATE_LISTEN`, `EXECGATE_STORE`, `EXECGATE_GATEWAY_LISTEN`,
`EXECGATE_METRICS_LISTEN`), with the servers' defaults (metrics: 127.0.0.1:9464).
Port 0 picks free ports; the examples show the ones the servers report
(`runtime.launcher`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from observability.redaction import redact
from runtime.launcher import Child, LaunchError, python_module
from runtime.ready_file import GRPC, HTTP, METRICS

SERVICE_ADDRESS = os.environ.get("EXECGATE_LISTEN", "127.0.0.1:50051")
GATEWAY_ADDRESS = os.environ.get("EXECGATE_GATEWAY_LISTEN", "127.0.0.1:8080")
STORE_URL = os.environ.get("EXECGATE_STORE", "sqlite:///var/execgate.db")
METRICS_ADDRESS = os.environ.get("EXECGATE_METRICS_LISTEN", "127.0.0.1:9464")
STARTUP_TIMEOUT_S = 20.0


def _ensure_port_free(address: str, name: str) -> None:
    host, port = address.rsplit(":", 1)
    if int(port) == 0:
        return
    with socket.socket() as probe:
        if probe.connect_ex((host, int(port))) == 0:
            sys.exit(
                f"{address} is already in use, so the {name} cannot start there. "
                f"Stop what is using it, or pick another address with the environment "
                f"variable shown in README.md."
            )


def _store_env() -> dict[str, str]:
    # The store URL may hold a password: children get it in their environment, never in
    # their arguments (which anyone can read in `ps`).
    return {**os.environ, "EXECGATE_STORE": STORE_URL}


def _seed_demo() -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "service", "demo", "--json"],
        env=_store_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    demo: dict[str, Any] = json.loads(output)
    return demo


def _grpcurl() -> str:
    # `make run` does not activate the venv: name the venv's grpcurl unless one is on PATH.
    return "grpcurl" if shutil.which("grpcurl") else str(Path(sys.executable).with_name("grpcurl"))


def _print_examples(demo: dict[str, Any], service: str, gateway: str, metrics: str) -> None:
    key = demo["api_key"]
    namespace = demo["namespace"]["name"]
    retriever = demo["retriever"]
    executions = demo["executions"]
    base = f"http://{gateway}"
    auth = f"-H 'Authorization: Bearer {key}' -H 'X-Namespace: {namespace}'"
    grpc_auth = f"-H 'authorization: Bearer {key}' -H 'x-namespace: {namespace}'"
    get_body = json.dumps(
        {"retriever_id": retriever["name"], "execution_id": executions["completed_10"]}
    )
    print(
        f"""
execgate is up: REST gateway on {base}, gRPC service on {service}, store {redact(STORE_URL)}

Try (copy and paste):

  # an execution, with the retriever named by ID or by name
  curl -s {auth} {base}/v1/retrievers/{retriever["id"]}/executions/{executions["completed_10"]}
  curl -s {auth} {base}/v1/retrievers/{retriever["name"]}/executions/{executions["failed"]}

  # list a retriever's executions, newest first
  curl -s {auth} -H 'Content-Type: application/json' \\
       -X POST '{base}/v1/retrievers/{retriever["name"]}/executions/list?limit=2' \\
       -d '{{"status": "completed"}}'

  # the same over gRPC
  {_grpcurl()} -plaintext {service} list
  {_grpcurl()} -plaintext {grpc_auth} \\
       -d '{get_body}' \\
       {service} execgate.retrievers.v1.ExecutionService/GetExecution

  # the API description and operations endpoints
  curl -s {base}/openapi.json | head -c 300; echo
  curl -s {base}/readyz; echo
  curl -s {base}/metrics | grep http_requests_total
  curl -s http://{metrics}/metrics | grep grpc_server_handled_total
  open {base}/docs in a browser

Execution IDs by status: {json.dumps(executions)}
Press Ctrl-C to stop both servers.
""",
        flush=True,
    )


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that `main`'s clean-up stops both servers


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    _ensure_port_free(SERVICE_ADDRESS, "gRPC service")
    _ensure_port_free(GATEWAY_ADDRESS, "REST gateway")
    _ensure_port_free(METRICS_ADDRESS, "service's metrics endpoint")
    demo = _seed_demo()
    children: list[Child] = []
    try:
        service = Child(
            "service",
            python_module(
                "service",
                "serve",
                "--listen",
                SERVICE_ADDRESS,
                "--metrics-listen",
                METRICS_ADDRESS,
            ),
            env=_store_env(),
        )
        children.append(service)
        service_ready = service.wait_ready(STARTUP_TIMEOUT_S)
        gateway = Child(
            "gateway",
            python_module(
                "gateway",
                "serve",
                "--listen",
                GATEWAY_ADDRESS,
                "--backend",
                service_ready.address(GRPC),
            ),
        )
        children.append(gateway)
        gateway_ready = gateway.wait_ready(STARTUP_TIMEOUT_S)
        _print_examples(
            demo,
            service_ready.address(GRPC),
            gateway_ready.address(HTTP),
            service_ready.address(METRICS),
        )
        while all(child.running for child in children):
            time.sleep(0.5)
    except LaunchError as error:
        sys.exit(str(error))
    except KeyboardInterrupt:
        pass
    finally:
        # SIGTERM lets both finish in-flight calls (graceful shutdown), then they exit;
        # the gateway first, while the service still answers its calls.
        for child in reversed(children):
            child.stop(15)


if __name__ == "__main__":
    main()
