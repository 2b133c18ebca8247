"""Secret settings (the store URL) from a file or the environment, never echoed; passwords
masked in every log line."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from observability.log_format import JsonFormatter
from observability.redaction import redact
from runtime.settings import CommandParser, Setting, SettingError, add_settings, integer, text
from service.cli import STORE

URL = "postgresql://execgate:S3cret-pw@db.internal:5432/execgate"


def _value(setting: Setting[Any], argv: list[str], environ: dict[str, str]) -> object:
    parser = CommandParser(prog="t")
    add_settings(parser, (setting,))
    return setting.value(parser.parse_args(argv), environ)


def test_the_store_url_is_read_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "store"
    secret.write_text(URL + "\n")  # as `echo` and most secret stores write it
    assert _value(STORE, ["--store-file", str(secret)], {}) == URL
    assert _value(STORE, [], {"EXECGATE_STORE_FILE": str(secret)}) == URL


def test_flag_then_file_flag_then_variable_then_file_variable(tmp_path: Path) -> None:
    files = {}
    for name in ("flag", "variable"):
        files[name] = tmp_path / name
        files[name].write_text(f"sqlite:///{name}-file.db")
    environ = {
        "EXECGATE_STORE": "sqlite:///variable.db",
        "EXECGATE_STORE_FILE": str(files["variable"]),
    }
    both = ["--store", "sqlite:///flag.db", "--store-file", str(files["flag"])]
    assert _value(STORE, both, environ) == "sqlite:///flag.db"
    assert _value(STORE, both[2:], environ) == "sqlite:///flag-file.db"
    assert _value(STORE, [], environ) == "sqlite:///variable.db"
    assert _value(STORE, [], {"EXECGATE_STORE_FILE": str(files["variable"])}) == (
        "sqlite:///variable-file.db"
    )


def test_an_unreadable_or_empty_file_is_named_not_guessed(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=r"--store-file .*cannot read it"):
        _value(STORE, ["--store-file", str(tmp_path / "missing")], {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingError, match=r"EXECGATE_STORE_FILE .*empty"):
        _value(STORE, [], {"EXECGATE_STORE_FILE": str(empty)})


def test_a_secret_that_does_not_parse_is_not_echoed() -> None:
    pin = Setting("--pin", "T_PIN", integer, 0, "a secret number", secret=True)
    with pytest.raises(SettingError) as refused:
        _value(pin, ["--pin", "hunter2"], {})
    assert "hunter2" not in str(refused.value)
    assert "--pin (secret)" in str(refused.value)
    plain = Setting("--n", "T_N", integer, 0, "a number")
    with pytest.raises(SettingError, match="'x'"):
        _value(plain, ["--n", "x"], {})


def test_only_secrets_get_a_file_flag() -> None:
    parser = CommandParser(prog="t")
    add_settings(parser, (Setting("--name", "T_NAME", text, "", "a name"),))
    with pytest.raises(SystemExit):
        parser.parse_args(["--name-file", "x"])


@pytest.mark.parametrize(
    ("text_in", "text_out"),
    [
        (URL, "postgresql://execgate:***@db.internal:5432/execgate"),
        ("postgres://u:p%40ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unescaped @
        (
            "connect: host=h user=u password='a b' dbname=d",
            "connect: host=h user=u password=*** dbname=d",
        ),
        (
            "postgresql://user@host/db and sqlite:///var/x.db",
            "postgresql://user@host/db and sqlite:///var/x.db",
        ),
        ("mail me at a@b.example", "mail me at a@b.example"),
        # One JSON line: a match never runs into the next field.
        ('{"a":"x://u:p@h","b":"c@d"}', '{"a":"x://u:***@h","b":"c@d"}'),
        ('{"a":"x://u:","b":"c@d"}', '{"a":"x://u:","b":"c@d"}'),
    ],
)
def test_redaction(text_in: str, text_out: str) -> None:
    assert redact(text_in) == text_out


def test_every_part_of_a_log_line_is_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"cannot open {URL}")
        except ValueError:
            logger.exception("store %s failed", URL, extra={"store": URL, "other": [URL]})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "S3cret-pw" not in line
    entry = orjson.loads(line)
    assert entry["msg"] == "store postgresql://execgate:***@db.internal:5432/execgate failed"
    assert entry["store"] == "postgresql://execgate:***@db.internal:5432/execgate"
    assert entry["other"] == [entry["store"]]
    assert entry["exception"].endswith("ValueError: cannot open " + entry["store"])


@pytest.mark.slow  # starts the service
def test_a_refused_store_url_is_logged_without_its_password(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--listen", "127.0.0.1:0"],
        env={**os.environ, "EXECGATE_STORE": "mysql://execgate:S3cret-pw@db/x"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "mysql://execgate:***@db/x" in result.stderr
    assert "S3cret-pw" not in result.stderr + result.stdout
