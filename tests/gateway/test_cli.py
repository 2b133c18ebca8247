"""`python -m gateway serve` settings: flags, environment variables, defaults, --help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.cli import EVENT_LOOP, OPTIONS, build_parser, config_from_args
from gateway.config import GatewayConfig

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`


def test_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    config = config_from_args(args, {})
    assert config == GatewayConfig()
    assert EVENT_LOOP.value(args, {}) == "auto"


def test_environment_then_flag_precedence() -> None:
    environ = {
        "EXECGATE_GATEWAY_LISTEN": "127.0.0.1:9000",
        "EXECGATE_GATEWAY_BACKEND": "127.0.0.1:1,127.0.0.1:2",
        "EXECGATE_GATEWAY_SERVICES": "a.B, c.D",
        "EXECGATE_GATEWAY_MAX_TIMEOUT": "30",
        "EXECGATE_GATEWAY_ACCESS_LOG": "off",
        "EXECGATE_GATEWAY_LOG_LEVEL": "debug",
    }
    args = build_parser().parse_args(["serve", "--max-timeout", "20"])
    config = config_from_args(args, environ)
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.grpc_target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert config.services == ("a.B", "c.D")
    assert config.max_timeout_s == 20.0
    assert config.access_log is False
    assert config.log_level == "DEBUG"


def test_every_option_has_an_environment_variable_and_reaches_the_config() -> None:
    names = {option.env for option in OPTIONS}
    assert len(names) == len(OPTIONS)
    assert all(name.startswith("EXECGATE_GATEWAY_") for name in names)
    flags = [option.flag for option in OPTIONS]
    given = {
        "--default-timeout-seconds": "2",
        "--access-log": "no",
        "--ui": "off",
        "--log-level": "warning",
        "--services": "x.Y",
        "--listen": "127.0.0.1:0",
        "--event-loop": "asyncio",
        "--backend": "127.0.0.1:9",
        "--backend-tls": "on",
        "--cors-allow-origins": "https://a.example,http://b.example:3000",
        "--cors-allow-credentials": "on",
        "--admin-listen": "127.0.0.1:9465",
    }
    argv = ["serve"]
    for flag in flags:
        argv += [f"{flag}={given.get(flag, '3')}"]
    config = config_from_args(build_parser().parse_args(argv), {})
    assert config.default_timeout_s == 2.0
    assert config.max_body_bytes == 3
    assert config.drain_s == 3.0
    assert config.access_log is False
    assert config.cors_allow_origins == ("https://a.example", "http://b.example:3000")
    assert config.tls_cert_file == config.backend_tls_ca_file == "3"
    assert config.ui is False


def test_former_flag_and_variable_names_still_work() -> None:
    environ = {"EXECGATE_GATEWAY_SHUTDOWN_TIMEOUT": "3", "EXECGATE_GATEWAY_DRAIN": "1"}
    args = build_parser().parse_args(["serve", "--default-timeout", "4", "--drain", "2"])
    config = config_from_args(args, environ)
    assert (config.default_timeout_s, config.drain_s, config.shutdown_timeout_s) == (4, 2, 3)
    # The new name wins over the former one.
    renamed = {**environ, "EXECGATE_GATEWAY_SHUTDOWN_TIMEOUT_SECONDS": "5"}
    assert config_from_args(build_parser().parse_args(["serve"]), renamed).shutdown_timeout_s == 5


def gateway(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **environ},
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "environ", "named"),
    [
        (("--log-level", "verbose"), {}, "--log-level 'verbose'"),
        ((), {"EXECGATE_GATEWAY_MAX_HEADERS": "many"}, "EXECGATE_GATEWAY_MAX_HEADERS 'many'"),
        ((), {"EXECGATE_GATEWAY_ACCESS_LOG": "maybe"}, "EXECGATE_GATEWAY_ACCESS_LOG 'maybe'"),
        (("--listen", "nowhere"), {}, "--listen 'nowhere'"),
        (("--default-timeout-seconds", "90"), {}, "timeouts must satisfy"),
        (("--drain", "-1"), {}, "--drain '-1': expected 0 or more seconds"),
        ((), {"EXECGATE_GATEWAY_DRAIN": "x"}, "EXECGATE_GATEWAY_DRAIN 'x'"),
    ],
)
def test_a_bad_value_ends_with_one_line_naming_it_and_status_2(
    args: tuple[str, ...], environ: dict[str, str], named: str
) -> None:
    result = gateway("serve", *args, **environ)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert named in result.stderr


def test_help_lists_flags_and_variables_even_with_a_bad_variable() -> None:
    result = gateway("serve", "--help", EXECGATE_GATEWAY_DRAIN="abc")
    assert result.returncode == 0, result.stderr
    flat = result.stdout.replace("\n", "").replace(" ", "")
    for option in OPTIONS:
        assert option.flag in result.stdout
        assert option.env in flat
