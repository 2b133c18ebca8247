"""`GET /metrics` over HTTP on its own port, served on the service's event loop.

aiohttp (already a dependency, for the gateway) rather than prometheus-client's
`start_http_server`: that one runs a thread per server which outlives a
graceful shutdown and scrapes concurrently with the loop thread, so the
lock-free counters of `ServiceMetrics` would need locks. Here a scrape is one
short callback on the loop, and `stop` closes the socket with the rest.
"""

from __future__ import annotations

from aiohttp import web

from observability.worker_metrics import WorkerMetricsSharing
from runtime.ready_file import METRICS
from runtime.supervisor import SharedPort
from service.metrics import ServiceMetrics


def parse_metrics_listen(value: str) -> tuple[str, int] | None:
    """`HOST:PORT` as host and port; `""` or `"0"` mean no metrics endpoint."""
    value = value.strip()
    if value in ("", "0"):
        return None
    host, separator, port = value.rpartition(":")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"metrics address must be HOST:PORT, 0 or empty, not {value!r}")
    return host.strip("[]"), int(port)


def metrics_ports(value: str) -> list[SharedPort]:
    """The `--metrics-listen` port a supervisor opens for its workers; none when off."""
    address = parse_metrics_listen(value)
    return [] if address is None else [SharedPort("--metrics-listen", *address, METRICS)]


class MetricsEndpoint:
    """`sharing`: this process is one of several workers on one port; scrapes merge them all."""

    def __init__(
        self, metrics: ServiceMetrics, sharing: WorkerMetricsSharing | None = None
    ) -> None:
        self._metrics = metrics
        self._sharing = sharing
        app = web.Application()
        app.router.add_get("/metrics", self._scrape)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port; returns the port (useful with port 0)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_port=self._sharing is not None)
        try:
            if self._sharing is not None:
                await self._sharing.start()
            await site.start()
        except OSError as error:
            await self.stop()
            raise OSError(f"cannot serve metrics on {host}:{port}: {error.strerror}") from None
        bound: int = self._runner.addresses[0][1]
        return bound

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self._sharing is not None:
            await self._sharing.stop()

    async def _scrape(self, request: web.Request) -> web.Response:
        sharing = self._sharing
        body = self._metrics.exposition() if sharing is None else await sharing.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = self._metrics.content_type
        return response
