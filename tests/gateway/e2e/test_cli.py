"""`python -m gateway serve` as users run it: a real process, configured by environment
variables, in front of the real service; SIGTERM finishes in-flight requests and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import orjson
import pytest

from runtime.launcher import Child, python_module
from runtime.ready_file import HTTP
from tests.support.running_service import RunningService

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`


def _start(service: RunningService, log: Path, **settings: str) -> tuple[Child, int]:
    """`python -m gateway serve` configured by environment, ready; its port."""
    environ = {
        **os.environ,
        "EXECGATE_GATEWAY_LISTEN": "127.0.0.1:0",
        "EXECGATE_GATEWAY_BACKEND": service.address,
        **{f"EXECGATE_GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    child = Child("gateway", python_module("gateway", "serve"), env=environ, log=log)
    try:
        return child, child.wait_ready(30).port(HTTP)
    except BaseException:
        child.stop(timeout_s=0)
        raise


@pytest.mark.asyncio
async def test_serve_command_end_to_end_and_sigterm(
    running_service: RunningService, tmp_path: Path
) -> None:
    child, port = _start(running_service, tmp_path / "gateway.log", shutdown_timeout="5")
    process = child.process
    try:
        demo = running_service.demo
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        execution = demo.executions["completed_10"]
        url = f"{base}/v1/retrievers/{demo.retriever.name}/executions/{execution}"
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(url) as response:
                assert response.status == 200
                assert (await response.json())["execution_id"] == execution
            async with http.get(f"{base}/openapi.json") as response:
                assert response.status == 200
                document = await response.json()
            assert document["openapi"].startswith("3.1")
            assert "/v1/retrievers/{retriever_id}/executions/{execution_id}" in document["paths"]
            async with http.get(f"{base}/docs") as response:
                assert response.status == 200
                assert response.content_type == "text/html"

            # A request racing SIGTERM is answered, not dropped (the app-level test
            # test_graceful_shutdown_finishes_in_flight_requests holds one open for sure).
            in_flight = asyncio.ensure_future(http.get(url, headers={"X-Request-Timeout": "5"}))
            await asyncio.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            response = await in_flight
            assert response.status == 200
            response.release()
        assert await asyncio.wait_for(child.exited(), 15) == 0
        logged = (tmp_path / "gateway.log").read_bytes()
        records = [orjson.loads(line) for line in logged.splitlines()]
        access = [r for r in records if "request_id" in r and "status" in r]
        assert {r["route"] for r in access} >= {
            "/v1/retrievers/{retriever_id}/executions/{execution_id}",
            "/openapi.json",
        }
        assert demo.api_key not in logged.decode()
        assert any(r.get("msg") == "gateway stopped" for r in records)
    finally:
        child.stop(timeout_s=0)


@pytest.mark.asyncio
async def test_drain_keeps_serving_while_readyz_says_503(
    running_service: RunningService, tmp_path: Path
) -> None:
    child, port = _start(running_service, tmp_path / "gateway.log", drain="1.5")
    process = child.process
    try:
        demo = running_service.demo
        base = f"http://127.0.0.1:{port}"
        execution = demo.executions["failed"]
        url = f"{base}/v1/retrievers/{demo.retriever.id}/executions/{execution}"
        headers = {"Authorization": f"Bearer {demo.api_key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "shutting_down"
            async with http.get(url) as response:
                assert response.status == 200  # still served while draining
        assert await asyncio.wait_for(child.exited(), 15) == 0
    finally:
        child.stop(timeout_s=0)
