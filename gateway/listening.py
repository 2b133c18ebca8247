"""The REST port and the optional admin port of a serving process, opened and closed
in the order a graceful shutdown needs.

The gateway and the single-process server listen the same way; this is that one way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from gateway.app import DocsRoutes, start_admin_site, start_site, stop_listening_before_cleanup
from gateway.config import GatewayConfig
from runtime.ready_file import ADMIN, HTTP, address
from runtime.tls import ServerCertificate
from runtime.worker import Worker


@dataclass(frozen=True, slots=True)
class Listening:
    port: int  # the bound REST port
    addresses: dict[str, str]  # ready-file entries: HTTP and, when set, ADMIN


@asynccontextmanager
async def listening(
    app: web.Application,
    config: GatewayConfig,
    certificate: ServerCertificate | None,
    docs_routes: DocsRoutes | None,
    worker: Worker | None,
) -> AsyncIterator[Listening]:
    """Listen on the REST port (HTTPS with `certificate`) and the admin port if set.

    On exit the REST listener closes first and its in-flight requests finish; the admin
    port closes last, so the final requests can still be scraped. As one `worker` of
    several, both ports are shared with its siblings (SO_REUSEPORT).
    """
    runner: web.AppRunner | None = None
    admin: tuple[web.AppRunner, str, int] | None = None
    try:
        ssl_context = certificate.ssl_context() if certificate is not None else None
        shared = worker is not None
        runner, port = await start_site(app, config, ssl_context, reuse_port=shared)
        addresses = {HTTP: address(config.host, port)}
        admin = await start_admin_site(app, config, docs_routes, reuse_port=shared)
        if admin is not None:
            addresses[ADMIN] = address(admin[1], admin[2])
        yield Listening(port, addresses)
    finally:
        if runner is not None:
            await stop_listening_before_cleanup(runner, worker)
            await runner.cleanup()
        if admin is not None:
            await admin[0].cleanup()
