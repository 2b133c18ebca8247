"""Direct gRPC load: N concurrent grpc.aio tasks calling GetExecution, each on its own connection.

Run by the harness as a child process (`python -m bench.grpc_load ...`), so that its CPU
is its own and does not slow the harness. Protocol on stdio: after connecting and warming
up it prints `READY`, waits for a line on stdin, runs for `--duration` seconds, and prints
one JSON line with the counts by gRPC status, latency percentiles (µs) and its CPU time.

The client neither parses responses (it asks for raw bytes) nor builds requests per call
(one request, serialised once): it should cost as little as a Python gRPC client can, so
that the gateway's added latency is not hidden behind client work. For the same reason
it runs on the gRPC core I/O the gateway uses (`runtime.grpc_io`).
"""

from __future__ import annotations

from runtime.grpc_io import use_polling_io

use_polling_io()  # before grpc is imported, as the gateway does

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import grpc  # noqa: E402
from execgate.retrievers.v1 import execution_service_pb2  # noqa: E402

from bench.load_result import percentile  # noqa: E402

GET_EXECUTION = "/execgate.retrievers.v1.ExecutionService/GetExecution"
WARMUP_CALLS_PER_CONNECTION = 5
CALL_TIMEOUT_S = 10.0


class _Load:
    def __init__(self, request: bytes, metadata: tuple[tuple[str, str], ...]) -> None:
        self.request = request
        self.metadata = metadata
        self.codes: Counter[str] = Counter()
        self.latencies_ns: list[int] = []

    async def call(self, method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> str:
        try:
            await method(self.request, metadata=self.metadata, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
        return "OK"

    async def worker(
        self, method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes], deadline: float
    ) -> None:
        clock = time.perf_counter_ns
        while time.monotonic() < deadline:
            started = clock()
            code = await self.call(method)
            self.latencies_ns.append(clock() - started)
            self.codes[code] += 1


async def _main(args: argparse.Namespace) -> dict[str, object]:
    request = execution_service_pb2.GetExecutionRequest(
        retriever_id=args.retriever_id, execution_id=args.execution_id
    ).SerializeToString()
    metadata = tuple((key, value) for key, _, value in (m.partition("=") for m in args.metadata))
    load = _Load(request, metadata)
    # A local subchannel pool per channel: otherwise grpc shares one TCP connection.
    channels = [
        grpc.aio.insecure_channel(args.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(args.connections)
    ]
    try:
        methods: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            channel.unary_unary(GET_EXECUTION) for channel in channels
        ]
        for method in methods:
            for _ in range(WARMUP_CALLS_PER_CONNECTION):
                await load.call(method)
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu_started = time.process_time()
        started = time.monotonic()
        deadline = started + args.duration
        await asyncio.gather(*(load.worker(method, deadline) for method in methods))
        elapsed = time.monotonic() - started
        cpu_s = time.process_time() - cpu_started
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
    latencies = load.latencies_ns
    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "codes": dict(load.codes),
        "p50_us": percentile(latencies, 0.50) / 1000,
        "p99_us": percentile(latencies, 0.99) / 1000,
        "cpu_s": cpu_s,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", required=True, help="service address, HOST:PORT")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, required=True, help="seconds of load")
    parser.add_argument("--retriever-id", required=True)
    parser.add_argument("--execution-id", required=True)
    parser.add_argument(
        "--metadata", action="append", default=[], help="KEY=VALUE sent with every call"
    )
    result = asyncio.run(_main(parser.parse_args(argv)))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
