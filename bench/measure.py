"""One measurement: a bounded load run against one target, with the CPU every process spent."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.cases import Case
from bench.load_result import LoadResult
from bench.proc_stats import group_cpu_seconds
from bench.processes import REPO_ROOT, HarnessError, python_module_command
from bench.wrk import run_wrk

# How long a direct-gRPC client may take to connect and warm up before it is stuck.
_CLIENT_READY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """What a load run is aimed at.

    `http_url` is None for direct gRPC (then `grpc_address` is set). `front` is the
    process group answering HTTP (execgate gateway, peer, ceiling) and `service` the
    gRPC service behind it, when there is one; their CPU is measured per run.
    """

    name: str
    http_url: str | None
    grpc_address: str | None
    front: int | None
    service: int | None


@dataclass(frozen=True, slots=True)
class Measurement:
    target: str
    case: str
    connections: int
    round: int
    result: LoadResult
    front_cpu_s: float | None
    service_cpu_s: float | None


class _CpuWindow:
    """CPU of the target's server processes between `start()` and `stop()`."""

    def __init__(self, target: Target) -> None:
        self._groups = {"front": target.front, "service": target.service}
        self._before: dict[str, float] = {}
        self.spent: dict[str, float | None] = {}

    def start(self) -> None:
        self._before = {
            role: group_cpu_seconds(pgid) for role, pgid in self._groups.items() if pgid
        }

    def stop(self) -> None:
        self.spent = {
            role: (group_cpu_seconds(pgid) - self._before[role]) if pgid else None
            for role, pgid in self._groups.items()
        }


def measure(
    target: Target,
    case: Case,
    *,
    connections: int,
    duration_s: int,
    round_index: int,
    http_headers: Mapping[str, str],
    grpc_metadata: Mapping[str, str],
) -> Measurement:
    window = _CpuWindow(target)
    if target.http_url is not None:
        window.start()
        result = run_wrk(
            target.http_url,
            [case.path],
            connections=connections,
            duration_s=duration_s,
            headers=http_headers,
            expected_status=case.expected_http,
        )
    else:
        assert target.grpc_address is not None
        result = run_grpc_load(
            target.grpc_address,
            case,
            connections=connections,
            duration_s=duration_s,
            metadata=grpc_metadata,
            on_start=window.start,
        )
    window.stop()
    return Measurement(
        target=target.name,
        case=case.name,
        connections=connections,
        round=round_index,
        result=result,
        front_cpu_s=window.spent["front"],
        service_cpu_s=window.spent["service"],
    )


def run_grpc_load(
    address: str,
    case: Case,
    *,
    connections: int,
    duration_s: int,
    metadata: Mapping[str, str],
    on_start: Callable[[], None],
) -> LoadResult:
    """Run `bench.grpc_load` in a child process; `on_start` runs just before its load begins."""
    command = python_module_command(
        "bench.grpc_load",
        "--target",
        address,
        "--connections",
        str(connections),
        "--duration",
        str(duration_s),
        "--retriever-id",
        case.retriever_id,
        "--execution-id",
        case.execution_id,
    )
    for key, value in metadata.items():
        command += ["--metadata", f"{key}={value}"]
    client = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdin is not None
        assert client.stdout is not None
        # The client connects and warms up outside the measured window, then says READY.
        ready = client.stdout.readline().strip()
        if ready != "READY":
            raise HarnessError(f"grpc_load did not start: {ready!r} {_stderr_of(client)}")
        on_start()
        client.stdin.write("GO\n")
        client.stdin.flush()
        line = client.stdout.readline()
        client.wait(timeout=_CLIENT_READY_TIMEOUT_S)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if client.returncode != 0 or not line:
        raise HarnessError(f"grpc_load failed ({client.returncode}): {_stderr_of(client)}")
    report = json.loads(line)
    codes: dict[str, int] = report["codes"]
    expected = codes.get(case.expected_grpc, 0)
    return LoadResult(
        requests=int(report["requests"]),
        duration_s=float(report["duration_s"]),
        expected=expected,
        unexpected=int(report["requests"]) - expected,
        p50_us=float(report["p50_us"]),
        p99_us=float(report["p99_us"]),
        client_cpu_s=float(report["cpu_s"]),
    )


def _stderr_of(client: subprocess.Popen[str]) -> str:
    if client.stderr is None:
        return ""
    if client.poll() is None:
        client.kill()
        client.wait()
    return client.stderr.read()[-2000:]
