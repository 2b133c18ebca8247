"""The README's Python client examples work verbatim against the demo data."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from gateway.config import GatewayConfig
from service.demo import shell_exports
from tests.support.gateway_harness import running_gateway
from tests.support.running_service import RunningService

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _demo_environment(service: RunningService) -> dict[str, str]:
    # Exactly what `eval "$(python -m service demo --shell)"` puts in the environment.
    exports = shell_exports(service.demo).splitlines()
    return dict(os.environ) | dict(line.removeprefix("export ").split("=", 1) for line in exports)


async def _run_example(name: str, argument: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        argument,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.mark.asyncio
async def test_grpc_client_example(running_service: RunningService) -> None:
    output = await _run_example(
        "grpc_client.py", running_service.address, _demo_environment(running_service)
    )
    completed_10 = running_service.demo.executions["completed_10"]
    assert f"{completed_10}: 10 documents, first doc_" in output
    assert output.count(" created ") == 3


@pytest.mark.asyncio
async def test_rest_client_example(running_service: RunningService) -> None:
    config = GatewayConfig(port=0, backend=running_service.address, shutdown_timeout_s=2.0)
    async with running_gateway(config) as gateway:
        output = await _run_example(
            "rest_client.py", gateway.base_url, _demo_environment(running_service)
        )
    completed_10 = running_service.demo.executions["completed_10"]
    assert f"{completed_10}: completed, 10 documents" in output
    assert "stages: " in output
    assert 'ETag "' in output
