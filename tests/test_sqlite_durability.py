"""An acknowledged SQLite write survives kill -9 of the writing process.

Each round starts `helpers/sqlite_writer.py` on the same database file, lets
it acknowledge a random number of inserts and updates (or kills it at a
random moment, possibly while it is still opening or migrating), SIGKILLs it,
then reopens the store and checks that every execution ever acknowledged is
there, whole, at its acknowledged version or a later one, and that
`PRAGMA integrity_check` is ok.

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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from service.store.sqlite import SqliteStore
from tests.helpers.sqlite_writer import NAMESPACE, RETRIEVER, detail_for, version_of

WRITER = Path(__file__).parent / "helpers" / "sqlite_writer.py"
ROUNDS = 60
ROUND_TIMEOUT_S = 15.0


@dataclass
class Round:
    """What one writer process acknowledged before it died."""

    acks: dict[str, str] = field(default_factory=dict)  # execution_id -> latest etag
    ready: bool = False
    _pending: bytes = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()  # an unfinished line is not an acknowledgement
        for line in lines:
            words = line.decode().split()
            if words == ["READY"]:
                self.ready = True
            elif len(words) == 3 and words[0] == "ACK":
                self.acks[words[1]] = words[2]
            else:
                raise AssertionError(f"unexpected writer output {line!r}")


def run_round(db: Path, round_number: int, rng: random.Random) -> Round:
    """Start a writer, SIGKILL it at a random point, return what it acknowledged."""
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(round_number), str(rng.randrange(2**32))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    assert writer.stderr is not None
    result = Round()
    started = time.monotonic()
    if rng.random() < 0.2:
        # Blind: any moment from interpreter start-up through open() and writing.
        kill_at, acks_wanted = started + rng.uniform(0.0, 0.4), None
    else:
        kill_at, acks_wanted = started + ROUND_TIMEOUT_S, rng.randint(1, 40)
    try:
        fd = writer.stdout.fileno()
        while time.monotonic() < kill_at:
            if acks_wanted is not None and len(result.acks) >= acks_wanted:
                time.sleep(rng.uniform(0.0, 0.003))  # land inside the next write
                break
            readable, _, _ = select.select([fd], [], [], max(0.0, kill_at - time.monotonic()))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # the writer exited on its own: reported below
                result.feed(chunk)
        else:
            assert acks_wanted is None, f"round {round_number}: writer too slow, no kill point"
        writer.send_signal(signal.SIGKILL)
        # Lines written before the kill were acknowledged too.
        result.feed(writer.stdout.read())
        writer.wait(timeout=ROUND_TIMEOUT_S)
        errors = writer.stderr.read().decode()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
        writer.stderr.close()
    assert writer.returncode == -signal.SIGKILL, f"writer died by itself:\n{errors}"
    return result


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
async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    db = tmp_path / "durability.db"
    acknowledged: dict[str, str] = {}
    for round_number in range(ROUNDS):
        result = run_round(db, round_number, rng)
        acknowledged.update(result.acks)  # each round writes only its own executions
        if db.exists():
            await check_acknowledged(db, acknowledged)
        else:
            assert not acknowledged, f"seed {seed}: database file missing"
    # Rounds killed before writing anything prove nothing; most must have written.
    assert len(acknowledged) >= ROUNDS, f"seed {seed}: only {len(acknowledged)} acknowledged"
