"""What a deployment file may ask of the `execgate` command: its subcommands and the
environment variables each one reads, taken from the command's own parser."""

from __future__ import annotations

import argparse
import re
from functools import cache

from runtime.main import build_parser

_VARIABLE = re.compile(r"\bEXECGATE_[A-Z0-9_]+\b")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("execgate has no subcommands")


@cache
def variables_of(command: str) -> frozenset[str]:
    """Every EXECGATE_* variable `execgate COMMAND` reads (from its --help)."""
    return frozenset(_VARIABLE.findall(_subcommands()[command].format_help()))


def all_variables() -> frozenset[str]:
    return frozenset().union(*(variables_of(name) for name in _subcommands()))


def parses(args: list[str]) -> argparse.Namespace:
    """`execgate ARGS` as the parser reads it (SystemExit on an unknown command or flag)."""
    return build_parser().parse_args(args)
