"""`runtime.settings`: the rules every command's settings follow, checked over all of them."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench import run as bench_run
from bench import scaling as bench_scaling
from bench import watchers as bench_watchers
from gateway import cli as gateway_cli
from runtime.settings import (
    FALSE_WORDS,
    TRUE_WORDS,
    Setting,
    SettingError,
    add_settings,
    boolean,
    integer,
    log_level,
    non_negative_number,
    positive_count,
    positive_seconds,
    seconds,
)
from scripts import run_local
from service import cli as service_cli
from service import cluster
from singleprocess import cli as singleprocess_cli

EVERY_COMMAND: dict[str, tuple[Setting[Any], ...]] = {
    "gateway": gateway_cli.OPTIONS,
    "service": service_cli.SERVE_OPTIONS,
    "demo": (service_cli.STORE, service_cli.DEMO_KEY_FILE, service_cli.DRIVE_INTERVAL),
    "serve": (*singleprocess_cli.SERVICE_OPTIONS, *singleprocess_cli.GATEWAY_OPTIONS),
    "cluster": (*cluster.OPTIONS, cluster.RESTART, cluster.DRAIN_SECONDS),
    "bench": bench_run.OPTIONS,
    "bench.scaling": bench_scaling.OPTIONS,
    "bench.watchers": bench_watchers.OPTIONS,
    "make run": run_local.OPTIONS,
}
ALL = [(name, s) for name, settings in EVERY_COMMAND.items() for s in settings]


@pytest.mark.parametrize(("command", "setting"), ALL, ids=[f"{c}{s.flag}" for c, s in ALL])
def test_every_setting_has_a_variable_help_and_a_unit_in_its_name(
    command: str, setting: Setting[Any]
) -> None:
    assert setting.env.startswith("EXECGATE_")
    assert setting.help
    if setting.parse in (seconds, positive_seconds):
        assert setting.flag.endswith("-seconds")
    if setting.flag.endswith(("-seconds", "-ms")):
        assert setting.parse in (seconds, positive_seconds, integer)


@pytest.mark.parametrize(("command", "settings"), EVERY_COMMAND.items())
def test_flags_and_variables_are_unique_per_command(
    command: str, settings: tuple[Setting[Any], ...]
) -> None:
    assert len({s.flag for s in settings}) == len(settings)
    assert len({s.env for s in settings}) == len(settings)


def test_booleans_have_one_spelling_everywhere() -> None:
    assert {boolean(word) for word in TRUE_WORDS} == {True}
    assert {boolean(word.upper()) for word in FALSE_WORDS} == {False}
    for word in ("", "2", "maybe", "enabled"):
        with pytest.raises(ValueError, match="expected one of"):
            boolean(word)


def test_log_levels_are_any_case() -> None:
    assert log_level("debug") == "DEBUG"
    assert log_level(" Warning ") == "WARNING"
    with pytest.raises(ValueError, match="DEBUG"):
        log_level("verbose")


def test_counts_and_rates_that_would_refuse_everything_are_refused() -> None:
    assert positive_count(" 1 ") == 1
    assert non_negative_number("0") == 0.0
    assert non_negative_number("2.5") == 2.5
    for raw in ("0", "-1"):
        with pytest.raises(ValueError, match=r"^expected 1 or more$"):
            positive_count(raw)
    with pytest.raises(ValueError, match=r"^expected 0 or more$"):
        non_negative_number("-0.5")
    with pytest.raises(ValueError, match="finite"):
        non_negative_number("inf")


@pytest.mark.parametrize(
    ("command", "flag", "raw"),
    [
        ("service", "--max-in-flight", "0"),
        ("service", "--max-in-flight", "-1"),
        ("gateway", "--max-in-flight", "0"),
        ("serve", "--max-in-flight", "-1"),
        ("service", "--rate-limit-burst", "0"),
        ("serve", "--rate-limit-burst", "-5"),
        ("service", "--rate-limit-per-second", "-1"),
        ("serve", "--rate-limit-per-second", "-0.5"),
    ],
)
def test_serve_limits_are_refused_at_parse_time_naming_the_flag(
    command: str, flag: str, raw: str
) -> None:
    setting = next(s for s in EVERY_COMMAND[command] if s.flag == flag)
    parser = argparse.ArgumentParser()
    add_settings(parser, (setting,))
    with pytest.raises(SettingError, match=rf"^{flag} '{raw}': expected . or more$"):
        setting.value(parser.parse_args([f"{flag}={raw}"]), {})
    with pytest.raises(SettingError, match=rf"^{setting.env} '{raw}'"):
        setting.value(parser.parse_args([]), {setting.env: raw})


def test_flag_then_variable_then_default_and_errors_name_their_source() -> None:
    setting = Setting("--grace-seconds", "EXECGATE_GRACE_SECONDS", seconds, 10.0, "grace")
    parser = argparse.ArgumentParser()
    from runtime.settings import add_settings

    add_settings(parser, (setting,))
    assert setting.value(parser.parse_args([]), {}) == 10.0
    assert setting.value(parser.parse_args([]), {"EXECGATE_GRACE_SECONDS": "3"}) == 3.0
    flagged = parser.parse_args(["--grace-seconds", "4"])
    assert setting.value(flagged, {"EXECGATE_GRACE_SECONDS": "abc"}) == 4.0
    with pytest.raises(SettingError, match=r"^EXECGATE_GRACE_SECONDS 'abc': expected a number$"):
        setting.value(parser.parse_args([]), {"EXECGATE_GRACE_SECONDS": "abc"})
    with pytest.raises(SettingError, match=r"^--grace-seconds 'nan': expected a finite number$"):
        setting.value(parser.parse_args(["--grace-seconds", "nan"]), {})


def test_parse_settings_reads_flags_and_variables_and_ends_a_bad_value_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.settings import CommandParser, parse_settings

    setting = Setting("--grace-seconds", "EXECGATE_GRACE_SECONDS", seconds, 10.0, "grace")
    monkeypatch.setenv("EXECGATE_GRACE_SECONDS", "3")
    assert parse_settings(CommandParser(prog="tool"), (setting,), []) == {"grace_seconds": 3.0}
    monkeypatch.setenv("EXECGATE_GRACE_SECONDS", "abc")
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(CommandParser(prog="tool"), (setting,), [])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "tool: error: EXECGATE_GRACE_SECONDS 'abc': expected a number\n"
    )
