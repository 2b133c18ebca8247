"""Bring up everything the benchmark compares, on 127.0.0.1, and check it answers right.

Order: seed the demo data into a fresh SQLite file → service → execgate gateway and
peer gateway (both on that one service) → fetch each case once through execgate →
ceiling serving exactly those bodies → check the peer and the ceiling answer the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import Case, Demo, cases_for
from bench.processes import (
    REPO_ROOT,
    HarnessError,
    ProcessSet,
    ServerProcess,
    free_port,
    python_module_command,
)
from runtime.ready_file import GRPC, HTTP

READY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Stack:
    demo: Demo
    cases: list[Case]
    service: ServerProcess
    service_address: str
    gateway: ServerProcess
    gateway_url: str
    peer: ServerProcess
    peer_url: str
    ceiling: ServerProcess
    ceiling_url: str
    bodies: dict[str, Fetched]  # execgate's answer per case name
    notes: list[str]  # differences worth reporting, e.g. peer body ≠ execgate body


def seed_demo(store_url: str) -> Demo:
    done = subprocess.run(
        python_module_command("service", "demo", "--json", "--store", store_url),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise HarnessError(f"`python -m service demo` failed:\n{done.stderr[-2000:]}")
    return Demo.from_json(json.loads(done.stdout))


def fetch(url: str, headers: Mapping[str, str], timeout_s: float = 10.0) -> Fetched:
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 (loopback http)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return Fetched(response.status, response.read())
    except urllib.error.HTTPError as error:
        return Fetched(error.code, error.read())


def fetch_when_ready(server: ServerProcess, url: str, headers: Mapping[str, str]) -> Fetched:
    """The first answer to `url` that is not a connection failure or a 5xx from start-up."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            fetched = fetch(url, headers)
        except OSError as error:
            last = str(error)
        else:
            if fetched.status < 500:
                return fetched
            last = f"HTTP {fetched.status}: {fetched.body[:300]!r}"
        time.sleep(0.1)
    raise HarnessError(f"{server.name} did not answer {url} in time ({last})")


def start_service(
    processes: ProcessSet,
    store_url: str,
    *,
    name: str = "service",
    extra_args: Sequence[str] = (),
) -> tuple[ServerProcess, str]:
    """`python -m service serve` on loopback port 0, started and listening, as `name`.

    `extra_args` follow the `serve` arguments. Returns the process and its gRPC address.
    """
    # No per-key rate limit: the benchmark sends one key's requests as fast as it can.
    command = python_module_command(
        "service",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        store_url,
        "--rate-limit-per-second",
        "0",
        *extra_args,
    )
    service = processes.start(name, command, ready_file=True)
    return service, service.wait_ready(READY_TIMEOUT_S).address(GRPC)


def start_gateway(
    processes: ProcessSet,
    backend: str,
    *,
    command: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> tuple[ServerProcess, str]:
    """A gateway on loopback port 0 calling `backend`, started and listening.

    `command` is the gateway command before its flags (`python -m gateway serve` if empty);
    `extra_args` follow `--listen` and `--backend`. Returns the process and its REST address.
    """
    argv = [
        *(command or python_module_command("gateway", "serve")),
        "--listen",
        "127.0.0.1:0",
        "--backend",
        backend,
        *extra_args,
    ]
    gateway = processes.start("gateway", argv, ready_file=True)
    return gateway, gateway.wait_ready(READY_TIMEOUT_S).address(HTTP)


def start_stack(processes: ProcessSet, work_dir: Path) -> Stack:
    store_url = f"sqlite:///{work_dir / 'bench.db'}"
    demo = seed_demo(store_url)
    cases = cases_for(demo)

    service, service_address = start_service(processes, store_url)
    gateway, gateway_address = start_gateway(processes, service_address)
    gateway_url = f"http://{gateway_address}"

    peer_port = free_port()
    peer = processes.start(
        "peer",
        python_module_command(
            "bench.peer_gateway",
            "--listen",
            f"127.0.0.1:{peer_port}",
            "--backend",
            service_address,
        ),
    )
    peer_url = f"http://127.0.0.1:{peer_port}"
    peer.wait_for_port(peer_port, READY_TIMEOUT_S)

    bodies = {
        case.name: _fetch_expecting(gateway, gateway_url, case, demo.http_headers) for case in cases
    }
    responses_file = work_dir / "ceiling_responses.json"
    responses_file.write_text(
        json.dumps(
            [
                {
                    "path": case.path,
                    "status": bodies[case.name].status,
                    "body": bodies[case.name].body.decode(),
                }
                for case in cases
            ]
        )
    )
    ceiling_port = free_port()
    ceiling = processes.start(
        "ceiling",
        python_module_command(
            "bench.ceiling",
            "--listen",
            f"127.0.0.1:{ceiling_port}",
            "--responses",
            str(responses_file),
        ),
    )
    ceiling_url = f"http://127.0.0.1:{ceiling_port}"
    ceiling.wait_for_port(ceiling_port, READY_TIMEOUT_S)

    notes: list[str] = []
    for case in cases:
        expected = bodies[case.name]
        if _fetch_expecting(ceiling, ceiling_url, case, {}).body != expected.body:
            raise HarnessError(f"the ceiling's body for {case.name} differs from execgate's")
        peer_body = _fetch_expecting(peer, peer_url, case, demo.http_headers).body
        notes += _compare_json(case.name, expected.body, peer_body)
    return Stack(
        demo=demo,
        cases=cases,
        service=service,
        service_address=service_address,
        gateway=gateway,
        gateway_url=gateway_url,
        peer=peer,
        peer_url=peer_url,
        ceiling=ceiling,
        ceiling_url=ceiling_url,
        bodies=bodies,
        notes=notes,
    )


def _fetch_expecting(
    server: ServerProcess, base_url: str, case: Case, headers: Mapping[str, str]
) -> Fetched:
    fetched = fetch_when_ready(server, base_url + case.path, headers)
    if fetched.status != case.expected_http:
        raise HarnessError(
            f"{server.name} answered {case.name} ({case.path}) with HTTP {fetched.status}, "
            f"expected {case.expected_http}: {fetched.body[:500]!r}"
        )
    return fetched


# Fields that legitimately differ between two gateways answering the same request.
_PER_REQUEST_KEYS = frozenset({"request_id"})


def _compare_json(case_name: str, execgate_body: bytes, peer_body: bytes) -> list[str]:
    """Differences between execgate's and the peer's JSON, as short notes (empty when equal)."""
    ours, theirs = json.loads(execgate_body), json.loads(peer_body)
    if ours == theirs:
        return []
    differing = sorted(_differing_paths(ours, theirs, ""))
    shown = ", ".join(differing[:8]) + (" …" if len(differing) > 8 else "")
    return [f"peer body differs from execgate's for {case_name} at: {shown}"]


def _differing_paths(ours: Any, theirs: Any, where: str) -> Sequence[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        paths: list[str] = []
        for key in ours.keys() | theirs.keys():
            if key in _PER_REQUEST_KEYS:
                continue
            paths += _differing_paths(ours.get(key), theirs.get(key), f"{where}.{key}")
        return paths
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        paths = []
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            paths += _differing_paths(a, b, f"{where}[{index}]")
        return paths[:3]
    return [] if ours == theirs else [where or "(root)"]


if __name__ == "__main__":
    sys.exit("run the benchmark with `python -m bench.run`")
