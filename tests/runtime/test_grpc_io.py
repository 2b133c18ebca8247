"""The servers select gRPC core's polling I/O before grpc is imported, unless told otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from runtime.grpc_io import ENV, POLLING_IO_EXPERIMENTS

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

# In a child process: what `use_polling_io` did and what the environment then says.
_CHILD = """
import json, os, sys
if sys.argv[1] == "grpc-first":
    import grpc
from runtime.grpc_io import use_polling_io
applied = use_polling_io()
print(json.dumps({"applied": applied, "value": os.environ.get("GRPC_EXPERIMENTS")}))
"""

# An entry point imported the way its console script imports it; `--help` exits.
_ENTRY = """
import json, os, sys
sys.argv = [sys.argv[1], "--help"] if sys.argv[1] == "gateway" else [sys.argv[1], "serve", "--help"]
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    try:
        __import__(sys.argv[0] + ".__main__", fromlist=["run"]).run()
    except SystemExit:
        pass
print(json.dumps({"value": os.environ.get("GRPC_EXPERIMENTS"), "grpc": "grpc" in sys.modules}))
"""


def _child(code: str, arg: str, environ: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code, arg], capture_output=True, text=True, env=environ, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def _clean_environ() -> dict[str, str]:
    # The test process itself runs with the setting (tests/conftest.py).
    return {key: value for key, value in os.environ.items() if key != ENV}


def test_sets_the_experiments_when_nothing_chose_yet() -> None:
    assert _child(_CHILD, "fresh", _clean_environ()) == {
        "applied": True,
        "value": POLLING_IO_EXPERIMENTS,
    }


def test_an_operators_own_setting_wins_even_empty() -> None:
    for value in ("", "-event_engine_client"):
        environ = {**_clean_environ(), ENV: value}
        assert _child(_CHILD, "fresh", environ) == {"applied": False, "value": value}


def test_too_late_once_grpc_is_imported() -> None:
    assert _child(_CHILD, "grpc-first", _clean_environ()) == {"applied": False, "value": None}


@pytest.mark.parametrize("package", ["gateway", "service"])
def test_entry_points_apply_it_before_importing_grpc(package: str) -> None:
    result = _child(_ENTRY, package, _clean_environ())
    assert result == {"value": POLLING_IO_EXPERIMENTS, "grpc": True}


# gRPC core parses GRPC_EXPERIMENTS when a channel or server is first made and logs
# each name it does not know ("Unknown experiment: NAME") at ERROR, then ignores it.
_MAKE_CHANNEL = "import grpc; grpc.insecure_channel('127.0.0.1:1').close()"


def _grpc_core_log(experiments: str) -> str:
    environ = {**_clean_environ(), ENV: experiments, "GRPC_VERBOSITY": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-c", _MAKE_CHANNEL],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_grpc_still_knows_every_experiment_name_we_set() -> None:
    # Fails when a grpcio upgrade dropped or renamed one: the setting would then be
    # silently ignored and the servers back on the EventEngine (docs/upgrading.md).
    assert "Unknown experiment" not in _grpc_core_log(POLLING_IO_EXPERIMENTS)


def test_grpc_reports_an_experiment_name_it_does_not_know() -> None:
    # The check above can fail: this is how gRPC says so.
    log = _grpc_core_log(f"{POLLING_IO_EXPERIMENTS},-no_such_experiment_in_grpc")
    assert "Unknown experiment: no_such_experiment_in_grpc" in log
