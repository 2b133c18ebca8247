"""The service's memory when its clients cancel calls in flight (grpc/grpc#43360).

    python -m bench.experiments.service_cancel_memory [--rounds 4000] [--case 10|1000]

Starts `python -m service serve` on a seeded SQLite file, warms it up, then
runs `--rounds` rounds of 8 concurrent GetExecution calls, made the way the
gateway makes them (`gateway.unary_rpc.CoreUnaryRpc`): once letting every call
finish, once cancelling every call after a random 0 to 2 ms. Printed: the
service's VmRSS before and after each way (each in a fresh service process).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from pathlib import Path

from runtime.grpc_io import use_polling_io

use_polling_io()

import grpc  # noqa: E402
from execgate.retrievers.v1 import execution_service_pb2  # noqa: E402

from bench.cases import Demo  # noqa: E402
from bench.proc_stats import group_rss_kib  # noqa: E402
from bench.processes import ProcessSet  # noqa: E402
from bench.stack import seed_demo, start_service  # noqa: E402
from gateway.unary_rpc import CoreUnaryRpc  # noqa: E402

METHOD = "/execgate.retrievers.v1.ExecutionService/GetExecution"
CONCURRENT = 8


def rss_mib(pid: int) -> float:
    return group_rss_kib(pid) / 1024  # the service is its own process group (ProcessSet)


def one_way(cancel: bool, rounds: int, case: str, work: Path) -> tuple[float, float]:
    store = f"sqlite:///{work / ('cancel.db' if cancel else 'finish.db')}"
    demo = seed_demo(store)
    with ProcessSet(work) as processes:
        service, address = start_service(processes, store)
        return asyncio.run(drive(service.pid, address, demo, cancel, rounds, case))


async def drive(
    pid: int, address: str, demo: Demo, cancel: bool, rounds: int, case: str
) -> tuple[float, float]:
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        rpc = CoreUnaryRpc(channel, METHOD, lambda data: data)  # type: ignore[arg-type, return-value]
        metadata = tuple(demo.grpc_metadata.items())
        request = execution_service_pb2.GetExecutionRequest(
            retriever_id=demo.retriever_id,
            execution_id=demo.executions[f"completed_{case}"],
        )

        async def call() -> None:
            await rpc(request, 5.0, metadata)

        for _ in range(300):
            await call()
        await asyncio.sleep(1)
        before = rss_mib(pid)
        pause = random.Random(1)
        for _ in range(rounds):
            calls = [asyncio.create_task(call()) for _ in range(CONCURRENT)]
            if cancel:
                await asyncio.sleep(pause.random() * 0.002)
                for pending in calls:
                    pending.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        await asyncio.sleep(2)
        for _ in range(50):
            await call()
        return before, rss_mib(pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4000)
    parser.add_argument("--case", choices=["10", "1000"], default="10")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for cancel in (False, True):
            before, after = one_way(cancel, args.rounds, args.case, Path(work))
            way = "cancelled in flight" if cancel else "finished"
            print(
                f"{args.rounds * CONCURRENT} calls {way}: service RSS {before:.1f} -> "
                f"{after:.1f} MiB ({after - before:+.1f})"
            )


if __name__ == "__main__":
    main()
