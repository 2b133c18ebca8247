"""Run a real gateway on 127.0.0.1 (port 0) for a test, and speak raw HTTP/1.1 to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.access_log import AccessLog
from gateway.app import ChannelFactory, build_app, start_site
from gateway.config import GatewayConfig
from gateway.openapi.routes import openapi_routes
from gateway.upstream import open_channel

LIBRARY_SERVICES = ("execgate.testing.v1.LibraryService", "execgate.testing.v1.ShelfWatchService")


@dataclass(frozen=True, slots=True)
class RunningGateway:
    base_url: str
    port: int
    app: web.Application


@asynccontextmanager
async def running_gateway(
    config: GatewayConfig,
    access_log: AccessLog | None = None,
    *,
    with_docs: bool = False,
    channel_factory: ChannelFactory = open_channel,
) -> AsyncIterator[RunningGateway]:
    """The gateway on `config`; its access log is off unless `access_log` is given,
    `/openapi.json` and `/docs` are served with `with_docs`, and `channel_factory`
    opens its upstream channel (an in-process one for single-process mode)."""
    app = build_app(
        config,
        access_log=access_log or AccessLog(None),
        docs_routes=openapi_routes() if with_docs else None,
        channel_factory=channel_factory,
    )
    runner, port = await start_site(app, config)
    try:
        yield RunningGateway(f"http://127.0.0.1:{port}", port, app)
    finally:
        await runner.cleanup()


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    version: str = "HTTP/1.1"  # of the status line

    def json(self) -> Any:
        return orjson.loads(self.body)


async def raw_request(port: int, data: bytes, timeout_s: float = 5.0) -> RawResponse:
    """Send `data` as is, read the answer until the server closes or it is complete."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout_s)
        version, status = status_line.split()[:2]
        return RawResponse(int(status), headers, body, version)
    finally:
        writer.close()
