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
   settings dataclass (`GatewayConfig`, `ServeSettings`, `singleprocess.cli.Settings`,
   `ClusterSettings`);
2. add one entry to that command's tuple (`gateway/cli.py: OPTIONS`, `service/cli.py:
   SERVE_OPTIONS`, `singleprocess/cli.py: SERVICE_OPTIONS`, `service/cluster.py: OPTIONS`),
   naming the field so the default is read from the dataclass::

       _option("idle_timeout_s", "--idle-timeout-seconds", seconds,
               "how long an idle keep-alive connection stays open")

   (`_option` is `Setting.of(GatewayConfig, …, env="EXECGATE_GATEWAY_")`; `env` is a
   prefix ending in `_` or a full variable name.) The flag, the variable, `--help`, the
   error messages and the value in the dataclass follow from it;
3. add its row to the command's table in README.md (a test compares them).
A secret (`secret=True`: the store URL, which holds a password) also gets `--<flag>-file`
and `<VARIABLE>_FILE`, read from a file (a Kubernetes or Docker secret), and is never
echoed in an error.
Name the unit in the flag (`-seconds`, `-ms`, `-bytes`; a test checks durations); parse
with `seconds`, `integer`, `positive_count`, `non_negative_number`, `boolean`, `log_level`,
`choice(…)`, `comma_list` or any function that raises ValueError with a short reason.
Renaming a flag: keep the old one in `former=` so existing deployments keep working.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, NoReturn, TypeVar

T = TypeVar("T")
Numeric = TypeVar("Numeric", int, float)

TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_USAGE: Final = 2
_SOURCE: Final = "_flag_given_for_"  # Namespace attribute: which spelling of a flag was used


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


def count(raw: str) -> int:
    """A whole number, 0 or more."""
    return _not_negative(integer(raw), "expected 0 or more")


def positive_count(raw: str) -> int:
    """A whole number, 1 or more (a limit where 0 would refuse everything)."""
    value = integer(raw)
    if value < 1:
        raise ValueError("expected 1 or more")
    return value


def number(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def non_negative_number(raw: str) -> float:
    """A finite number, 0 or more (a rate; a duration is `seconds`)."""
    return _not_negative(number(raw), "expected 0 or more")


def seconds(raw: str) -> float:
    """A duration: a finite number, 0 or more."""
    return _not_negative(number(raw), "expected 0 or more seconds")


def _not_negative(value: Numeric, reason: str) -> Numeric:
    if value < 0:
        raise ValueError(reason)
    return value


def positive_seconds(raw: str) -> float:
    """A duration that must be more than 0 (an interval to poll or wait on)."""
    value = seconds(raw)
    if value <= 0:
        raise ValueError("expected more than 0 seconds")
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
    # Former (flag, variable) names, still accepted when a setting is renamed.
    former: tuple[tuple[str, str], ...] = ()
    # A secret (a store URL with its password): also read from a file (`--store-file`,
    # `EXECGATE_STORE_FILE`), and never echoed in an error message.
    secret: bool = False

    @property
    def file_flag(self) -> str:
        return self.flag + "-file"

    @property
    def file_env(self) -> str:
        return self.env + "_FILE"

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
        former: Sequence[str] = (),
        secret: bool = False,
    ) -> Setting[T]:
        """The setting filling `settings_class.field`, defaulting to the field's default.

        `env` ending in `_` is a prefix: the variable is it plus the flag in upper case.
        `former`: flags this setting had before (their variables follow the same rule).
        """
        default = {f.name: f.default for f in dataclasses.fields(settings_class)}[field]
        if default is dataclasses.MISSING:
            raise TypeError(f"{settings_class.__name__}.{field} has no default")

        def variable(name: str) -> str:
            return env + name.removeprefix("--").upper().replace("-", "_")

        if not env.endswith("_"):
            return cls(flag, env, parse, default, help, metavar, field, secret=secret)
        renamed = tuple((old, variable(old)) for old in former)
        return cls(
            flag, variable(flag), parse, default, help, metavar, field, renamed, secret=secret
        )

    def value(self, args: argparse.Namespace, environ: Mapping[str, str]) -> T:
        """From the flag if given, else the variable if set, else the default.

        A secret also comes from a file: flag, `--…-file`, variable, `…_FILE`, in that order.
        """
        raw: str | None = getattr(args, self.dest, None)
        source = getattr(args, _SOURCE + self.dest, self.flag)
        if raw is None and self.secret:
            path = getattr(args, self.dest + "_file", None)
            if path is not None:
                raw, source = _read_secret(path, self.file_flag), self.file_flag
        if raw is None:
            for variable in (self.env, *(env for _, env in self.former)):
                raw, source = environ.get(variable), variable
                if raw is not None:
                    break
        if raw is None and self.secret:
            path = environ.get(self.file_env)
            if path is not None:
                raw, source = _read_secret(path, self.file_env), self.file_env
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as error:
            shown = "(secret)" if self.secret else repr(raw)
            raise SettingError(f"{source} {shown}: {error}") from None


def _read_secret(path: str, source: str) -> str:
    """A secret file's text without its final line break (as `echo` or a Secret writes it)."""
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise SettingError(f"{source} {path!r}: cannot read it: {reason}") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise SettingError(f"{source} {path!r}: the file is empty")
    return value


class CommandParser(argparse.ArgumentParser):
    """argparse with execgate's error style: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def command_parser(
    prog: str, description: str, *add_commands: Callable[[Any], object]
) -> CommandParser:
    """`prog COMMAND …`, its commands added by `add_commands` (each given the subparsers)."""
    parser = CommandParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in add_commands:
        add(commands)
    return parser


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
            metavar = setting.metavar or _METAVARS.get(setting.parse, setting.dest.upper())
            parser.add_argument(
                setting.flag,
                dest=setting.dest,
                action=_RememberFlag,
                default=argparse.SUPPRESS,
                metavar=metavar,
                help=help_text,
            )
            if setting.secret:
                parser.add_argument(
                    setting.file_flag,
                    dest=setting.dest + "_file",
                    action=_RememberFlag,
                    default=argparse.SUPPRESS,
                    metavar="PATH",
                    help=f"read {setting.flag} from this file, so it is in no process's "
                    f"arguments [env {setting.file_env}]",
                )
            for former, _ in setting.former:  # accepted, no longer shown
                parser.add_argument(
                    former,
                    dest=setting.dest,
                    action=_RememberFlag,
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )


class _RememberFlag(argparse.Action):
    """Stores the value and which spelling gave it (a former name), for error messages."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, _SOURCE + self.dest, option_string)


def values(
    args: argparse.Namespace, settings: Iterable[Setting[Any]], environ: Mapping[str, str]
) -> dict[str, Any]:
    """Every setting's parsed value by `dest`; raises SettingError on the first bad one."""
    return {setting.dest: setting.value(args, environ) for setting in settings}


def parse_settings(
    parser: argparse.ArgumentParser, settings: Sequence[Setting[Any]], argv: Sequence[str] | None
) -> dict[str, Any]:
    """`argv` read by `parser` with `settings` added as its flags: every setting's value
    by `dest`. A bad value ends the command with a one-line error, exit status 2."""
    add_settings(parser, settings)
    try:
        return values(parser.parse_args(argv), settings, os.environ)
    except SettingError as error:
        fail(str(error), parser.prog)


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


_METAVARS: Final[dict[Callable[[str], Any], str]] = {
    seconds: "SECONDS",
    integer: "N",
    positive_count: "N",
    number: "X",
    non_negative_number: "X",
}
