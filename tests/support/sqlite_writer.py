"""Writer processes for the kill -9 test: each writes executions until it is killed.

Run as a script, this is a fork server: for each line `DB_PATH ROUND SEED`
read from stdin it forks a writer, prints `STARTED <pid>`, waits for the
writer to die and prints `EXITED <exit code>` (-9 after SIGKILL). Forking an
interpreter that has already imported everything keeps a round to a few
milliseconds instead of a whole Python start-up.

A writer opens the SQLite store on DB_PATH, then loops: insert a new
execution or update one of those it inserted, and only after the call
returned print `ACK <execution_id> <etag>` (flushed; one write of less than
PIPE_BUF bytes, so lines of writers and server never interleave). A row's
content is a pure function of its etag (see `detail_for`), so the test can
tell a torn row from a whole one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from service.store.protocol import AlreadyExists, ExecutionRow, Namespace, Retriever
from service.store.sqlite import SqliteStore

NAMESPACE = Namespace("ns_durability", "durability", 1_700_000_000_000_000)
RETRIEVER = Retriever("ret_durability", NAMESPACE.id, "writer", 1_700_000_000_000_000)


def etag_for(execution_id: str, version: int) -> str:
    return f'"{execution_id}.{version}"'


def version_of(etag: str) -> int:
    return int(etag.strip('"').rsplit(".", 1)[1])


def detail_for(etag: str) -> bytes:
    """0.5-12 KiB of bytes determined by the etag: most rows span several pages."""
    digest = hashlib.sha256(etag.encode()).digest()
    size = 512 + int.from_bytes(digest[:2], "big") % (12 * 1024)
    return (digest * (size // len(digest) + 1))[:size]


def new_row(execution_id: str, created_at_us: int) -> ExecutionRow:
    etag = etag_for(execution_id, 1)
    return ExecutionRow(
        execution_id=execution_id,
        namespace_id=NAMESPACE.id,
        retriever_id=RETRIEVER.id,
        request_id=execution_id,
        status="pending",
        created_at_us=created_at_us,
        completed_at_us=None,
        duration_ms=None,
        credits_used=0.0,
        detail=detail_for(etag),
        summary=etag.encode(),
        etag=etag,
    )


def next_version(row: ExecutionRow) -> ExecutionRow:
    etag = etag_for(row.execution_id, version_of(row.etag) + 1)
    return replace(
        row,
        status="processing",
        credits_used=row.credits_used + 1,
        detail=detail_for(etag),
        summary=etag.encode(),
        etag=etag,
    )


async def ensure_scope(store: SqliteStore) -> None:
    # An earlier writer may have been killed before or after creating these.
    with contextlib.suppress(AlreadyExists):
        await store.create_namespace(NAMESPACE)
    with contextlib.suppress(AlreadyExists):
        await store.create_retriever(RETRIEVER)


def ack(row: ExecutionRow) -> None:
    sys.stdout.write(f"ACK {row.execution_id} {row.etag}\n")
    sys.stdout.flush()


async def write_until_killed(path: Path, round_number: int, seed: int) -> None:
    rng = random.Random(seed)
    store = SqliteStore(path)
    await store.open()
    await ensure_scope(store)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    mine: list[str] = []
    for n in range(1_000_000):
        if not mine or rng.random() < 0.5:
            row, _ = await store.insert_execution(new_row(f"exec_r{round_number}_{n}", n))
            mine.append(row.execution_id)
        else:
            execution_id = rng.choice(mine)
            row = await store.update_execution(
                NAMESPACE.id, RETRIEVER.id, execution_id, next_version
            )
        ack(row)


def serve() -> None:
    for command in sys.stdin:
        path, round_number, seed = command.split()
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            # The writer waits until the server has announced it.
            os.close(go_write)
            os.read(go_read, 1)
            os.close(go_read)
            try:
                asyncio.run(write_until_killed(Path(path), int(round_number), int(seed)))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        os.close(go_read)
        sys.stdout.write(f"STARTED {pid}\n")
        sys.stdout.flush()
        os.write(go_write, b"go")
        os.close(go_write)
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(f"EXITED {os.waitstatus_to_exitcode(status)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
