"""`python -m gateway serve` settings: flags, environment variables, defaults, --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.cli import OPTIONS, build_parser, config_from_args
from gateway.config import GatewayConfig


def test_defaults() -> None:
    args = build_parser({}).parse_args(["serve"])
    config = config_from_args(args)
    assert config == GatewayConfig()
    assert args.event_loop == "auto"


def test_environment_then_flag_precedence() -> None:
    environ = {
        "EXECGATE_GATEWAY_LISTEN": "127.0.0.1:9000",
        "EXECGATE_GATEWAY_BACKEND": "127.0.0.1:1,127.0.0.1:2",
        "EXECGATE_GATEWAY_SERVICES": "a.B, c.D",
        "EXECGATE_GATEWAY_MAX_TIMEOUT": "30",
    }
    args = build_parser(environ).parse_args(["serve", "--max-timeout", "20"])
    config = config_from_args(args)
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.grpc_target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert config.services == ("a.B", "c.D")
    assert config.max_timeout_s == 20.0


def test_every_option_has_an_environment_variable_and_reaches_the_config() -> None:
    names = {option.env for option in OPTIONS}
    assert len(names) == len(OPTIONS)
    assert all(name.startswith("EXECGATE_GATEWAY_") for name in names)


def test_bad_environment_value_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser({"EXECGATE_GATEWAY_MAX_HEADERS": "many"})
    assert "EXECGATE_GATEWAY_MAX_HEADERS" in capsys.readouterr().err


def test_help_lists_flags_and_variables() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    for option in OPTIONS:
        assert option.flag in result.stdout
        assert option.env in result.stdout.replace("\n", "").replace(" ", "") or (
            option.env in result.stdout
        )
