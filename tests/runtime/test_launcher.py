"""`runtime.launcher` and the ready file every server writes: port 0 everywhere, a child
that dies first is reported with its status and output, a silent one times out."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from runtime.launcher import Child, LaunchError, python_module
from runtime.ready_file import GRPC, HTTP, METRICS, write_ready_file

pytestmark = pytest.mark.slow

ENV = {**os.environ, "EXECGATE_UVLOOP": "0"}


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2):
        return True


def test_ready_file_is_whole_or_absent(tmp_path: Path) -> None:
    target = tmp_path / "ready.json"
    write_ready_file(str(target), {HTTP: "127.0.0.1:1"})
    assert json.loads(target.read_text()) == {"pid": os.getpid(), HTTP: "127.0.0.1:1"}
    assert [p.name for p in tmp_path.iterdir()] == ["ready.json"]  # no partial file left
    write_ready_file("", {HTTP: "127.0.0.1:1"})  # no path: nothing written


@pytest.mark.parametrize(
    ("command", "listeners"),
    [
        (
            ("service", "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"),
            {GRPC, METRICS},
        ),
        (("gateway", "serve", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1"), {HTTP}),
        (
            ("singleprocess", "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"),
            {HTTP, GRPC},
        ),
    ],
)
def test_every_server_reports_its_bound_ports_with_port_0(
    tmp_path: Path, command: tuple[str, ...], listeners: set[str]
) -> None:
    store = ("--store", f"sqlite:///{tmp_path / 'x.db'}") if command[0] != "gateway" else ()
    child = Child(command[0], python_module(*command, *store), env=ENV, log=tmp_path / "log")
    try:
        ready = child.wait_ready(30)
        assert ready.pid == child.pid
        assert set(ready.addresses) == listeners
        for listener in listeners:
            assert ready.port(listener) != 0
            assert _accepts(ready.address(listener))
    finally:
        assert child.stop() == 0  # SIGTERM: a graceful stop


def test_a_child_that_dies_first_is_reported_with_status_and_output(tmp_path: Path) -> None:
    command = python_module("service", "serve", "--listen", "127.0.0.1:0", "--store", "mysql://x")
    child = Child("broken", command, env=ENV, log=tmp_path / "log")
    try:
        with pytest.raises(LaunchError) as raised:
            child.wait_ready(30)
    finally:
        child.stop()
    message = str(raised.value)
    assert message.startswith("broken exited with status 1")
    assert "unknown store URL scheme" in message


@pytest.mark.asyncio
async def test_a_child_that_never_gets_ready_times_out_and_its_relay_keeps_the_tail() -> None:
    lines: list[str] = []

    class Relay:
        def write(self, text: str) -> int:
            lines.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    silent = [
        sys.executable,
        "-c",
        "import sys, time; print('hello', file=sys.stderr, flush=True); time.sleep(60)",
    ]
    child = Child("silent", silent, relay=Relay())  # type: ignore[arg-type]
    try:
        with pytest.raises(LaunchError, match=r"silent was not ready within 1 s.*\nhello"):
            await child.ready(1.0)
    finally:
        child.stop(timeout_s=1)
    assert lines == ["[silent] hello\n"]
