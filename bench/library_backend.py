"""The test-only library service, and a gateway exposing it, as processes for the benchmark.

`python -m bench.library_backend serve PORT` runs the library servicers
(`tests/gateway/library_servicer.py`, with its streaming `WatchShelfEvents`) on
127.0.0.1:PORT; `python -m bench.library_backend gateway FLAGS…` runs the
ordinary gateway command with the test protos importable. The test protos live
in `tests/gen` under the `execgate` package name, so both add that directory to
the package's search path first (what `tests/gateway/conftest.py` does for tests).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import execgate

from bench.processes import REPO_ROOT

TEST_SERVICES = "execgate.testing.v1.LibraryService,execgate.testing.v1.ShelfWatchService"


def _add_test_protos() -> None:
    path = str(Path(REPO_ROOT) / "tests" / "gen" / "execgate")
    if path not in execgate.__path__:
        execgate.__path__.append(path)


async def _serve(port: int) -> None:
    import grpc
    from execgate.testing.v1 import library_pb2_grpc

    from tests.gateway.library_servicer import Library, LibraryServicer, ShelfWatchServicer

    library = Library()
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 100_000)])
    library_pb2_grpc.add_LibraryServiceServicer_to_server(LibraryServicer(library), server)
    library_pb2_grpc.add_ShelfWatchServiceServicer_to_server(ShelfWatchServicer(library), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main(argv: list[str]) -> None:
    _add_test_protos()
    if argv[:1] == ["serve"] and len(argv) == 2:
        asyncio.run(_serve(int(argv[1])))
    elif argv[:1] == ["gateway"]:
        from gateway.cli import main as gateway_main

        gateway_main(["serve", "--services", TEST_SERVICES, *argv[1:]])
    else:
        raise SystemExit("usage: python -m bench.library_backend serve PORT | gateway FLAGS…")


if __name__ == "__main__":
    main(sys.argv[1:])
