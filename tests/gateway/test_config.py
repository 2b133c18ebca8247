"""Settings validation and the backend → gRPC target rule."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, GatewayConfig, grpc_target, parse_listen


@pytest.mark.parametrize(
    ("backend", "target"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051"),
        ("localhost:50051", "localhost:50051"),
        ("dns:///service.internal:50051", "dns:///service.internal:50051"),
        ("127.0.0.1:1, 127.0.0.1:2", "ipv4:127.0.0.1:1,127.0.0.1:2"),
        ("[::1]:1,[::1]:2", "ipv6:[::1]:1,[::1]:2"),
        ("unix:/run/execgate.sock", "unix:/run/execgate.sock"),
    ],
)
def test_grpc_target(backend: str, target: str) -> None:
    assert grpc_target(backend) == target


@pytest.mark.parametrize(
    "backend",
    [
        "",
        "127.0.0.1",
        "127.0.0.1:port",
        "127.0.0.1:70000",
        "a.example:1,b.example:2",
        "127.0.0.1:1,[::1]:2",
    ],
)
def test_grpc_target_rejects(backend: str) -> None:
    with pytest.raises(ConfigError):
        grpc_target(backend)


def test_parse_listen() -> None:
    assert parse_listen("10.0.0.1:8080") == ("10.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(ConfigError):
        parse_listen("8080")


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 70000},
        {"services": ()},
        {"default_timeout_s": 0.0},
        {"default_timeout_s": 5.0, "max_timeout_s": 1.0},
        {"max_body_bytes": 0},
        {"max_headers": 0},
        {"ready_timeout_s": 0.0},
    ],
)
def test_config_rejects_unusable_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        GatewayConfig(**changes)  # type: ignore[arg-type]


def test_defaults_are_the_documented_ones() -> None:
    config = GatewayConfig()
    assert (config.host, config.port, config.backend) == ("127.0.0.1", 8080, "127.0.0.1:50051")
    assert config.services == ("execgate.retrievers.v1.ExecutionService",)
