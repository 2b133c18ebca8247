"""The gateway's keepalive settings and the service's ping policy agree.

The gateway pings its backends even when idle (to notice a dead replica
before a call needs it); a gRPC server answers pings that come more often than
it allows with GOAWAY `too_many_pings`, which drops the connection. Proven
with real gRPC on both ends, intervals scaled down (see keepalive_probe).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.config import GatewayConfig
from service.server import SERVER_OPTIONS

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

GOAWAY_TEXT = "too_many_pings"


def start_probe(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.keepalive_probe", *flags],
        stderr=subprocess.PIPE,
        text=True,
        # The GOAWAY is logged at ERROR level, whatever the environment asks for.
        env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
    )


def probe_log(probe: subprocess.Popen[str]) -> str:
    _, stderr = probe.communicate(timeout=60)
    assert probe.returncode == 0, stderr
    assert "probe done" in stderr
    return stderr


def test_the_service_accepts_the_gateways_idle_pings() -> None:
    # Both probes at once: each idles for several seconds.
    with start_probe() as against_service, start_probe("--grpc-default-server") as against_grpc:
        assert GOAWAY_TEXT not in probe_log(against_service)
        # A server with gRPC's default policy (one ping per 5 minutes without
        # data) objects, which shows that the gateway's pings really keep
        # coming on an idle channel, and that the probe would see a disagreement.
        assert GOAWAY_TEXT in probe_log(against_grpc)


def test_the_default_keepalive_interval_is_within_what_the_service_permits() -> None:
    minimum_ms = [value for name, value in SERVER_OPTIONS if "min_ping_interval" in name]
    assert minimum_ms, "the service sets no minimum ping interval"
    assert GatewayConfig().keepalive_time_ms >= max(minimum_ms)
