"""The container's health check: exit 0 when the server answers healthy, else 1.

- `http://HOST:PORT/healthz` (the default, the gateway's or `execgate serve`'s): a 200;
- `grpc://HOST:PORT` (`execgate service`): gRPC health `SERVING` for the whole server.

Only the standard library and grpc (an execgate dependency), so the image needs no curl
or grpc_health_probe. Used by the Dockerfile's HEALTHCHECK, deploy/compose.yaml and the
release test (scripts/check_wheel.py), which runs it against an installed execgate.
Usage: python healthcheck.py [URL]
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080/healthz"
GRPC_SCHEME = "grpc://"
TIMEOUT_S = 3.0


def http_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:  # noqa: S310 (our URL)
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def grpc_healthy(address: str) -> bool:
    # Imported here: the HTTP check should not pay for loading grpc.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def healthy(url: str) -> bool:
    if url.startswith(GRPC_SCHEME):
        return grpc_healthy(url.removeprefix(GRPC_SCHEME))
    return http_healthy(url)


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    if healthy(url):
        return 0
    print(f"unhealthy: {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
