"""Fixtures shared across the suite."""

from __future__ import annotations

from runtime.grpc_io import use_polling_io

# The suite runs on the gRPC core I/O the servers run on (`python -m service|gateway`).
use_polling_io()

from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402

import grpc  # noqa: E402
import pytest  # noqa: E402
import pytest_asyncio  # noqa: E402

from gateway.config import GatewayConfig  # noqa: E402
from tests.support.gateway_harness import RunningGateway, running_gateway  # noqa: E402
from tests.support.running_service import RunningService, Stubs, start_service, stubs  # noqa: E402


@pytest_asyncio.fixture
async def running_service(tmp_path: Path) -> AsyncIterator[RunningService]:
    """The real service on 127.0.0.1:0 over a temporary SQLite file, seeded with the demo data.

    `running_service.address` is the gRPC address, `running_service.demo` the
    demo namespace, retriever, API key and execution IDs by status.
    """
    async with start_service(tmp_path) as service:
        yield service


@pytest_asyncio.fixture
async def grpc_channel(running_service: RunningService) -> AsyncIterator[grpc.aio.Channel]:
    """An insecure channel to `running_service`, closed after the test."""
    async with grpc.aio.insecure_channel(running_service.address) as channel:
        yield channel


@pytest_asyncio.fixture
async def service_stubs(grpc_channel: grpc.aio.Channel) -> Stubs:
    """Async stubs of ExecutionService (`reader`) and ExecutionWriterService (`writer`)."""
    return stubs(grpc_channel)


@pytest_asyncio.fixture
async def gateway(running_service: RunningService) -> AsyncIterator[RunningGateway]:
    """A real gateway on 127.0.0.1:0 in front of `running_service` (a module may define its own)."""
    config = GatewayConfig(port=0, backend=running_service.address, shutdown_timeout_s=2.0)
    async with running_gateway(config) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A PostgreSQL test needs the server process the session starts: process-level.
    for item in items:
        if item.get_closest_marker("postgres") is not None:
            item.add_marker(pytest.mark.slow)
