"""Run as `python -m tests.support.keepalive_probe [--grpc-default-server]`.

Serves health on a grpc.aio server built with the service's `SERVER_OPTIONS`
(or, with the flag, gRPC's defaults) and opens a channel with the gateway's
`channel_options`, both with their ping intervals scaled from seconds down to
milliseconds; leaves the channel idle for a while, then makes a call. gRPC's
C core logs `too_many_pings` to stderr when the server answers the client's
pings with GOAWAY; the test reads that log. (A subprocess, because the C core
writes to file descriptor 2, which pytest cannot capture per test.)
"""

from __future__ import annotations

import asyncio
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.config import GatewayConfig
from gateway.upstream import channel_options
from service.server import SERVER_OPTIONS

# The service lets clients ping every 10 s and the gateway pings every 30 s;
# here both are scaled down so that several pings fit into a short idle time.
SERVER_PING_INTERVAL_MS = 100
CLIENT_KEEPALIVE_MS = 200
IDLE_S = 6.0  # the server objects after about 3-4 s of too frequent pings


def scaled_server_options(*, grpc_defaults: bool) -> list[tuple[str, int]]:
    if grpc_defaults:
        return [("grpc.keepalive_permit_without_calls", 1)]
    return [
        (name, SERVER_PING_INTERVAL_MS if "ping_interval" in name else value)
        for name, value in SERVER_OPTIONS
    ]


async def probe(*, grpc_defaults: bool) -> None:
    server = grpc.aio.server(options=scaled_server_options(grpc_defaults=grpc_defaults))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = GatewayConfig(
        backend=f"127.0.0.1:{port}",
        keepalive_time_ms=CLIENT_KEEPALIVE_MS,
        keepalive_timeout_ms=1000,
    )
    try:
        async with grpc.aio.insecure_channel(
            config.grpc_target, options=channel_options(config)
        ) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            await asyncio.sleep(IDLE_S)
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        await server.stop(0)
    print("probe done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(probe(grpc_defaults="--grpc-default-server" in sys.argv[1:]))
