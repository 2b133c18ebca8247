"""scripts/healthcheck.py, the image's HEALTHCHECK and Compose's: healthy only on a 200
from `/healthz` or gRPC health SERVING, unhealthy on anything else, never hanging."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from scripts.healthcheck import healthy, main


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        _Answer.status = 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_http_200_is_healthy_anything_else_is_not(http_port: int) -> None:
    url = f"http://127.0.0.1:{http_port}/healthz"
    assert healthy(url)
    assert main(["healthcheck.py", url]) == 0
    _Answer.status = 503
    assert not healthy(url)
    assert main(["healthcheck.py", url]) == 1
    assert not healthy(f"http://127.0.0.1:{http_port}/elsewhere")
    assert not healthy(f"http://127.0.0.1:{_free_port()}/healthz")


def test_grpc_serving_is_healthy_not_serving_is_not() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert healthy(f"grpc://127.0.0.1:{port}")
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert not healthy(f"grpc://127.0.0.1:{port}")
    finally:
        server.stop(None)
    assert not healthy(f"grpc://127.0.0.1:{port}")
