"""`execgate`, the one command: every subcommand, `--version`, one error style, README tables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from gateway import cli as gateway_cli
from runtime.main import build_parser
from runtime.settings import Setting
from service import cli as service_cli
from service import cluster
from singleprocess import cli as singleprocess_cli

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

README = Path(__file__).resolve().parents[2] / "README.md"


def execgate(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **environ},
        check=False,
    )


def test_version_is_the_package_version() -> None:
    result = execgate("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"execgate {version('execgate')}"


@pytest.mark.parametrize(
    "command",
    [
        ("serve",),
        ("gateway",),
        ("service",),
        ("admin",),
        ("admin", "create-key"),
        ("demo",),
        ("cluster",),
    ],
)
def test_every_subcommand_has_help_in_one_style(command: tuple[str, ...]) -> None:
    # A bad variable never breaks --help.
    result = execgate(*command, "--help", EXECGATE_GRACE_SECONDS="abc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: execgate {' '.join(command)}")


def test_subcommands_are_the_module_entry_points_parsers() -> None:
    commands = build_parser()._subparsers
    assert commands is not None
    names = set(commands._group_actions[0].choices)  # type: ignore[arg-type]
    assert names == {"serve", "gateway", "service", "admin", "demo", "cluster"}


def test_admin_through_execgate_with_the_store_after_the_command(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'one.db'}"
    created = execgate("admin", "create-namespace", "acme", "--store", store)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["name"] == "acme"


@pytest.mark.parametrize(
    ("args", "environ", "expected"),
    [
        (("gateway", "--log-level", "verbose"), {}, "execgate gateway: error: --log-level"),
        (("service",), {"EXECGATE_UVLOOP": "maybe"}, "execgate service: error: EXECGATE_UVLOOP"),
        (("serve",), {"EXECGATE_CACHE_SECONDS": "x"}, "execgate serve: error: EXECGATE_CACHE_"),
        (("no-such-command",), {}, "execgate: error: argument COMMAND"),
    ],
)
def test_errors_are_one_line_with_status_2(
    args: tuple[str, ...], environ: dict[str, str], expected: str
) -> None:
    result = execgate(*args, **environ)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(expected)


def _readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    end = text.find("\n### ", start + len(title))
    return text[start : end if end != -1 else None]


@pytest.mark.parametrize(
    ("title", "settings"),
    [
        ("### `execgate serve`", singleprocess_cli.SERVICE_OPTIONS),
        ("### `execgate gateway`", gateway_cli.OPTIONS),
        ("### `execgate service`", service_cli.SERVE_OPTIONS),
        ("### `execgate cluster`", (*cluster.OPTIONS, cluster.RESTART, cluster.DRAIN_SECONDS)),
    ],
)
def test_readme_tables_name_every_flag_and_variable(
    title: str, settings: tuple[object, ...]
) -> None:
    section = _readme_section(title)
    for setting in settings:
        assert isinstance(setting, Setting)
        flag, env = setting.flag, setting.env
        assert re.search(rf"`{re.escape(flag)}[` ]", section), flag
        assert f"`{env}`" in section, env
