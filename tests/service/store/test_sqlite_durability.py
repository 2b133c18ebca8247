"""An acknowledged SQLite write survives kill -9 of the writing process.

Each round forks a writer (`tests/support/sqlite_writer.py`) on the same database
file, lets it acknowledge a random number of inserts and updates (or kills
it at a blind moment, possibly while it is still opening the store), sends
it SIGKILL, then reopens the store and checks that every execution ever
acknowledged is there, whole, at its acknowledged version or a later one,
and that `PRAGMA integrity_check` is ok.

SIGKILL loses no data the kernel already has, so this proves the store's
own promise (acknowledged = committed) and that recovery from a torn
transaction leaves a sound file; surviving power loss additionally rests on
`synchronous=FULL`, which this test cannot observe.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store.sqlite import SqliteStore
from tests.support import sqlite_writer
from tests.support.sqlite_writer import NAMESPACE, RETRIEVER, detail_for, version_of

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

WRITER = Path(sqlite_writer.__file__)
ROUNDS = 60
LINE_TIMEOUT_S = 20.0  # generous: CI machines stall


class WriterServer:
    """The fork server of tests/support/sqlite_writer.py, read line by line."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(WRITER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        self._stdout = self._process.stdout.fileno()
        self._lines: deque[str] = deque()
        self._unfinished = b""

    def start_writer(self, db: Path, round_number: int, seed: int) -> int:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{db} {round_number} {seed}\n".encode())
        self._process.stdin.flush()
        line = self.next_line(time.monotonic() + LINE_TIMEOUT_S)
        assert line is not None, "the writer server did not answer"
        kind, pid = line.split()
        assert kind == "STARTED", line
        return int(pid)

    def next_line(self, deadline: float) -> str | None:
        """The next complete output line, or None when the deadline passes first."""
        while not self._lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self._stdout], [], [], remaining)
            if readable:
                chunk = os.read(self._stdout, 65536)
                assert chunk, f"the writer server died:\n{self.close()}"
                *lines, self._unfinished = (self._unfinished + chunk).split(b"\n")
                self._lines.extend(line.decode() for line in lines)
        return self._lines.popleft()

    def close(self) -> str:
        """Stop the server; returns what it and its writers wrote to stderr."""
        assert self._process.stdin is not None
        assert self._process.stderr is not None
        assert self._process.stdout is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=LINE_TIMEOUT_S)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        errors = self._process.stderr.read().decode()
        self._process.stderr.close()
        self._process.stdout.close()
        return errors


@pytest.fixture
def writer_server() -> Iterator[WriterServer]:
    server = WriterServer()
    yield server
    server.close()


def run_round(
    server: WriterServer, db: Path, round_number: int, rng: random.Random
) -> dict[str, str]:
    """Fork a writer, SIGKILL it at a random point; returns {execution_id: etag} it acknowledged."""
    acks: dict[str, str] = {}

    def record(line: str) -> None:
        words = line.split()
        if words[0] == "ACK":
            acks[words[1]] = words[2]
        else:
            assert words == ["READY"], f"round {round_number}: unexpected {line!r}"

    pid = server.start_writer(db, round_number, rng.randrange(2**32))
    if rng.random() < 0.2:
        # Blind: any moment from the fork through open() and the first writes.
        kill_at, acks_wanted = time.monotonic() + rng.uniform(0.0, 0.05), None
    else:
        kill_at, acks_wanted = time.monotonic() + LINE_TIMEOUT_S, rng.randint(1, 25)
    while acks_wanted is None or len(acks) < acks_wanted:
        line = server.next_line(kill_at)
        if line is None:
            assert acks_wanted is None, f"round {round_number}: the writer stalled"
            break
        record(line)
    else:
        time.sleep(rng.uniform(0.0, 0.003))  # land inside the next write
    os.kill(pid, signal.SIGKILL)
    # Lines written before the kill were acknowledged too.
    while (line := server.next_line(time.monotonic() + LINE_TIMEOUT_S)) is not None:
        if line.startswith("EXITED"):
            assert line == f"EXITED {-signal.SIGKILL}", f"round {round_number}: writer {line}"
            return acks
        record(line)
    raise AssertionError(f"round {round_number}: the killed writer was never reaped")


async def check_acknowledged(db: Path, acknowledged: dict[str, str]) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        for execution_id, etag in acknowledged.items():
            row = await store.get_execution(NAMESPACE.id, RETRIEVER.id, execution_id)
            assert row is not None, f"acknowledged {execution_id} is gone"
            assert version_of(row.etag) >= version_of(etag), (execution_id, row.etag, etag)
            # Whole: the blobs belong to the version the etag names.
            assert row.detail == detail_for(row.etag), execution_id
            assert row.summary == row.etag.encode(), execution_id
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


@pytest.mark.asyncio
async def test_acknowledged_writes_survive_kill_9(
    tmp_path: Path, writer_server: WriterServer
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = tmp_path / "durability.db"
    acknowledged: dict[str, str] = {}
    for round_number in range(ROUNDS):
        acks = run_round(writer_server, db, round_number, rng)
        acknowledged.update(acks)  # each round writes only its own executions
        if db.exists():
            await check_acknowledged(db, acknowledged)
        else:
            assert not acknowledged, f"seed {seed}: the database file is gone"
    # Rounds killed before writing anything prove nothing; most must have written.
    assert len(acknowledged) >= ROUNDS, f"seed {seed}: only {len(acknowledged)} acknowledged"
