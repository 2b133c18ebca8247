"""Command-line settings: one declaration gives a flag, an environment variable, a type,
a default and a help line, the same way for every execgate command.

Rules every command follows (so a user learns them once):
- a flag wins over its environment variable, the variable over the default;
- booleans are spelt `1/0/true/false/yes/no/on/off` in flags and variables alike
  (`--access-log`, `--access-log=off` and `--no-access-log` also work), anything else is refused;
- a value that does not parse ends the command with ONE line naming the flag or the
  variable and exit status 2 (`CommandParser.error`), never a traceback;
- the environment is read only after the command line is parsed, so `--help` never
  fails on a bad variable;
- a setting added to a command with subcommands (`admin --store …`) is accepted before or
  after the subcommand (`add_settings` on both parsers; the value given last wins).

Why hand-written over pydantic-settings: start-up cost, measured in docs/performance.md
("Configuration layer: start-up cost").

How to add a setting (e.g. a gateway `--idle-timeout-seconds`):
1. add the field, with its default and a one-line comment, to the component's frozen
   settings dataclass (`GatewayConfig`, `ServeSettings`, …);
2. add one `Setting` to that command's tuple, naming the field so the default is read
   from the dataclass::

       Setting.of(GatewayConfig, "idle_timeout_s", "--idle-timeout-seconds", number,
                  "seconds an idle keep-alive connection stays open", env=GATEWAY_ENV)

   (`env` is a prefix ending in `_` or a full variable name.) The flag, the variable,
   `--help`, error messages and the value in the dataclass follow from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, NoReturn, TypeVar

T = TypeVar("T")

TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_USAGE: Final = 2


class SettingError(ValueError):
    """A setting's value cannot be used; the message is one line naming flag or variable."""


# --- value parsers: raise ValueError with a short reason ---------------------------------


def boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def integer(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def number(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def text(raw: str) -> str:
    return raw


def log_level(raw: str) -> str:
    """A Python logging level name, any case (`debug` → `DEBUG`)."""
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)} (any case)")
    return level


def choice(*allowed: str) -> Callable[[str], str]:
    """One of `allowed`, any case (stored as spelt in `allowed`)."""
    by_lower = {value.lower(): value for value in allowed}

    def parse(raw: str) -> str:
        try:
            return by_lower[raw.strip().lower()]
        except KeyError:
            raise ValueError(f"expected one of {', '.join(allowed)}") from None

    return parse


def comma_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


# --- declarations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One setting: its flag, environment variable, parser, default and help."""

    flag: str  # "--grace-seconds"
    env: str  # "EXECGATE_GRACE_SECONDS"
    parse: Callable[[str], T]
    default: T
    help: str
    metavar: str | None = None
    # The settings dataclass field it fills (`field_values`); "" when the command uses
    # the value itself.
    field: str = ""

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def is_boolean(self) -> bool:
        return self.parse is boolean

    @classmethod
    def of(
        cls,
        settings_class: type[Any],
        field: str,
        flag: str,
        parse: Callable[[str], T],
        help: str,
        *,
        env: str,
        metavar: str | None = None,
    ) -> Setting[T]:
        """The setting filling `settings_class.field`, defaulting to the field's default.

        `env` ending in `_` is a prefix: the variable is it plus the flag in upper case.
        """
        default = {f.name: f.default for f in dataclasses.fields(settings_class)}[field]
        if default is dataclasses.MISSING:
            raise TypeError(f"{settings_class.__name__}.{field} has no default")
        variable = (
            env + flag.removeprefix("--").upper().replace("-", "_") if env.endswith("_") else env
        )
        return cls(flag, variable, parse, default, help, metavar, field)

    def value(self, args: argparse.Namespace, environ: Mapping[str, str]) -> T:
        """From the flag if given, else the variable if set, else the default."""
        raw: str | None = getattr(args, self.dest, None)
        source = self.flag
        if raw is None:
            raw = environ.get(self.env)
            source = self.env
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as error:
            raise SettingError(f"{source} {raw!r}: {error}") from None


class CommandParser(argparse.ArgumentParser):
    """argparse with execgate's error style: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def fail(message: str, prog: str) -> NoReturn:
    """End the command with a one-line usage error (a bad setting)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def add_settings(parser: argparse.ArgumentParser, settings: Iterable[Setting[Any]]) -> None:
    """The settings as flags of `parser`; values are raw text until `values` parses them.

    Flags default to "not given" (SUPPRESS), so a subcommand's parser can carry the
    same flags as its parent without hiding the value given before the subcommand.
    """
    for setting in settings:
        shown = "off" if setting.default in ("", None) else _shown(setting.default)
        help_text = f"{setting.help} [env {setting.env}] (default: {shown})".replace("%", "%%")
        if setting.is_boolean:
            parser.add_argument(
                setting.flag,
                dest=setting.dest,
                nargs="?",
                const="true",
                default=argparse.SUPPRESS,
                metavar="on|off",
                help=help_text,
            )
            parser.add_argument(
                "--no-" + setting.flag.removeprefix("--"),
                dest=setting.dest,
                action="store_const",
                const="false",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
        else:
            parser.add_argument(
                setting.flag,
                dest=setting.dest,
                default=argparse.SUPPRESS,
                metavar=setting.metavar or setting.dest.upper(),
                help=help_text,
            )


def values(
    args: argparse.Namespace, settings: Iterable[Setting[Any]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Every setting's parsed value by `dest`; raises SettingError on the first bad one."""
    return {setting.dest: setting.value(args, environ) for setting in settings}


def field_values(
    args: argparse.Namespace, settings: Iterable[Setting[Any]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The values of the settings that fill a dataclass field, by field name."""
    return {s.field: s.value(args, environ) for s in settings if s.field}


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return str(value)


def environment_names(settings: Sequence[Setting[Any]]) -> list[str]:
    return [setting.env for setting in settings]
