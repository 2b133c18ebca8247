"""`python -m singleprocess serve` as a real process: REST and gRPC from one process, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2

from runtime.launcher import Child, python_module
from runtime.ready_file import GRPC, HTTP, METRICS
from service.demo import DemoData, seed
from service.store import open_store
from singleprocess.cli import build_parser, settings_from_args
from tests.support.running_service import auth, stubs

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`


@dataclass(frozen=True, slots=True)
class Running:
    child: Child
    log: Path
    rest_port: int
    grpc_port: int | None
    metrics_port: int
    demo: DemoData


async def _seeded_store(directory: Path) -> tuple[str, DemoData]:
    store_url = f"sqlite:///{directory / 'execgate.db'}"
    store = open_store(store_url)
    await store.open()
    try:
        return store_url, await seed(store, directory / "demo-key")
    finally:
        await store.close()


@asynccontextmanager
async def _serving(directory: Path, grpc_listen: str) -> AsyncIterator[Running]:
    store_url, demo = await _seeded_store(directory)
    command = python_module(
        *("singleprocess", "serve", "--listen", "127.0.0.1:0"),
        *("--grpc-listen", grpc_listen, "--store", store_url, "--shutdown-timeout-seconds", "5"),
        *("--metrics-listen", "127.0.0.1:0"),
    )
    log = directory / "singleprocess.log"
    env = {**os.environ, "EXECGATE_GATEWAY_ACCESS_LOG": "false"}
    child = Child("singleprocess", command, env=env, log=log)
    try:
        ready = await child.ready(30)
        grpc_port = ready.port(GRPC) if GRPC in ready.addresses else None
        yield Running(child, log, ready.port(HTTP), grpc_port, ready.port(METRICS), demo)
    finally:
        child.stop(timeout_s=0)


async def _stop(running: Running) -> bytes:
    running.child.process.send_signal(signal.SIGTERM)
    status = await asyncio.wait_for(running.child.exited(), 20)
    output = running.log.read_bytes()
    assert status == 0, output.decode()
    return output


async def _rest_get(running: Running, key: str) -> tuple[int, str]:
    demo = running.demo
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    url = (
        f"http://127.0.0.1:{running.rest_port}/v1/retrievers/{demo.retriever.name}"
        f"/executions/{demo.executions[key]}"
    )
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as response:
        return response.status, (await response.json())["execution_id"]


@pytest.mark.asyncio
async def test_serve_answers_rest_and_grpc_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with _serving(tmp_path, "127.0.0.1:0") as running:
        demo = running.demo
        assert await _rest_get(running, "completed_10") == (200, demo.executions["completed_10"])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            reply = await stubs(channel).reader.GetExecution(
                service_pb2.GetExecutionRequest(
                    retriever_id=demo.retriever.id, execution_id=demo.executions["failed"]
                ),
                metadata=auth(demo.api_key, demo.namespace.name),
                timeout=10,
            )
        assert reply.execution_id == demo.executions["failed"]
        # The service's metrics count both calls: the REST one in process, the gRPC one.
        metrics = f"http://127.0.0.1:{running.metrics_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(metrics) as response:
            exposition = await response.text()
        get_ok = (
            'grpc_server_handled_total{grpc_code="OK",grpc_method="GetExecution",'
            'grpc_service="execgate.retrievers.v1.ExecutionService",grpc_type="unary"} 2.0'
        )
        assert get_ok in exposition
        stderr = await _stop(running)
    assert b"stopped" in stderr


@pytest.mark.asyncio
async def test_serve_with_grpc_off_serves_rest_only(tmp_path: Path) -> None:
    async with _serving(tmp_path, "off") as running:
        assert running.grpc_port is None
        assert await _rest_get(running, "pending") == (200, running.demo.executions["pending"])
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{running.rest_port}/readyz") as response,
        ):
            assert response.status == 200  # health is served in-process too
        await _stop(running)


def test_every_service_flag_has_an_environment_variable() -> None:
    args = build_parser().parse_args(["serve"])
    settings = settings_from_args(
        args,
        {
            "EXECGATE_GRPC_LISTEN": "off",
            "EXECGATE_GRACE_SECONDS": "3",
            "EXECGATE_CACHE_SECONDS": "0",
            "EXECGATE_STORE": "sqlite:///elsewhere.db",
            "EXECGATE_GATEWAY_LISTEN": "127.0.0.1:0",
        },
    )
    assert settings.grpc_listen is None
    assert (settings.grace_seconds, settings.cache_seconds) == (3.0, 0.0)
    assert settings.store_url == "sqlite:///elsewhere.db"
    assert settings.gateway.port == 0
    flagged = build_parser().parse_args(["serve", "--grpc-listen", "127.0.0.1:0"])
    assert settings_from_args(flagged, {"EXECGATE_GRPC_LISTEN": "off"}).grpc_listen == (
        "127.0.0.1:0"
    )


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EXECGATE_GRACE_SECONDS": "abc"}, "EXECGATE_GRACE_SECONDS 'abc'"),
        ({"EXECGATE_GRPC_LISTEN": "nowhere"}, "EXECGATE_GRPC_LISTEN 'nowhere'"),
        ({"EXECGATE_GATEWAY_ACCESS_LOG": "sometimes"}, "EXECGATE_GATEWAY_ACCESS_LOG"),
    ],
)
def test_a_bad_variable_is_one_line_and_status_2_but_help_still_works(
    environ: dict[str, str], named: str
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "singleprocess", "serve", *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **environ},
            check=False,
        )

    failed = run()
    assert failed.returncode == 2
    assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert named in failed.stderr
    assert run("--help").returncode == 0
