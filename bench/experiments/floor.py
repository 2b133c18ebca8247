"""Floor of one unary call: server CPU per call for bare gRPC server modes.

    python -m bench.experiments.floor [--calls 6000] [--concurrency 64] [--rounds 3]

Each variant is a server answering every unary call with the same 5 KB of
bytes; a client process (8 channels, or FLOOR_CHANNELS; a fixed number of
calls, on uvloop; grpc.aio or the sync channel's `.future()` bridged to the
loop) loads it. Reported: server and client CPU (utime+stime from /proc) per
call, interleaved over rounds, median. What the execgate service cannot go below
whatever its handlers do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Any

import grpc

from runtime.grpc_io import POLLING_IO_EXPERIMENTS

METHOD = "/bench.Floor/Get"
PAYLOAD = b"x" * 5000
# What every client style sends: the gateway forwards about this much per call.
METADATA = (("authorization", "Bearer k"), ("x-namespace", "ns"), ("x-request-id", "r1"))
_TICKS = os.sysconf("SC_CLK_TCK")
# Client channels (TCP connections); the gateway uses one. Env FLOOR_CHANNELS.
CHANNELS = int(os.environ.get("FLOOR_CHANNELS", "8"))

VARIANTS = {
    "aio": "grpc.aio server, uvloop, handler reads metadata, sets 2 trailing keys",
    "aio-asyncio": "same on the default asyncio loop",
    "aio-no-trailing": "grpc.aio, uvloop, no trailing metadata",
    "aio-initial-md": "grpc.aio, uvloop, the 2 keys as initial metadata (send_initial_metadata)",
    "aio-throughput": "grpc.aio, uvloop, grpc.optimization_target=throughput",
    "aio-nobdp": "grpc.aio, uvloop, grpc.http2.bdp_probe=0",
    "aio-legacy": "grpc.aio, uvloop, GRPC_EXPERIMENTS turning the EventEngine off (FLOOR_LEGACY)",
    "sync4": "sync grpc.server, ThreadPoolExecutor(4)",
    "sync16": "sync grpc.server, ThreadPoolExecutor(16)",
    "sync4-bridge": "sync grpc.server, 4 threads, each call awaits a coroutine on a uvloop thread",
    "sync8-bridge": "the same with 8 threads",
}
CLIENTS = {
    "aio": "grpc.aio channel, awaited multicallable",
    "future": "sync channel, .future() settled on the loop with call_soon_threadsafe",
    "gwopts": "grpc.aio channel with the gateway's channel options (retries, round_robin, health)",
    "gwnohc": "gwopts without the service config (no round_robin, health check, retry policy)",
    "legacy": "grpc.aio channel, GRPC_EXPERIMENTS turning the EventEngine off (FLOOR_LEGACY)",
    "grpclib": "grpclib (pure-Python HTTP/2 on the loop's own socket), raw-bytes codec",
    "cython-legacy": "grpc.aio's Cython call object awaited directly (no Python wrapper)",
    "core-legacy": "the gateway's CoreUnaryRpc: the Cython call object in a task of its own",
    "threads-legacy": "threads, GRPC_EXPERIMENTS turning the EventEngine off (FLOOR_LEGACY)",
    "threads": "sync channel, blocking calls in a pool of `concurrency` threads (run_in_executor)",
    "pyqwest": "pyqwest (Rust reqwest/hyper HTTP/2, h2c), gRPC framing by hand",
}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _options(variant: str) -> list[tuple[str, Any]]:
    if variant == "aio-throughput":
        return [("grpc.optimization_target", "throughput")]
    if variant == "aio-nobdp":
        return [("grpc.http2.bdp_probe", 0)]
    return []


def serve(variant: str, port: int) -> None:
    if variant.startswith("sync"):
        workers = int(variant[4:].split("-")[0])
        loop = None
        if variant.endswith("-bridge"):
            import threading

            import uvloop

            loop = uvloop.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True).start()

        async def lookup() -> bytes:
            return PAYLOAD

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            dict(context.invocation_metadata())
            if loop is not None:
                asyncio.run_coroutine_threadsafe(lookup(), loop).result()
            context.set_trailing_metadata((("etag", '"abc"'), ("cache-control", "private")))
            return PAYLOAD

        server = grpc.server(futures.ThreadPoolExecutor(workers))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "bench.Floor", {"Get": grpc.unary_unary_rpc_method_handler(handle)}
                ),
            )
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        print("READY", flush=True)
        server.wait_for_termination()
        return

    async def handle_aio(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        dict(context.invocation_metadata() or ())
        if variant == "aio-initial-md":
            await context.send_initial_metadata((("etag", '"abc"'), ("cache-control", "private")))
        elif variant != "aio-no-trailing":
            context.set_trailing_metadata((("etag", '"abc"'), ("cache-control", "private")))
        return PAYLOAD

    async def main() -> None:
        server = grpc.aio.server(options=_options(variant))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "bench.Floor", {"Get": grpc.unary_unary_rpc_method_handler(handle_aio)}
                ),
            )
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("READY", flush=True)
        await server.wait_for_termination()

    if variant == "aio-asyncio":
        asyncio.run(main())
    else:
        import uvloop

        uvloop.run(main())


async def _warm_up_then_drive(
    call: Callable[[Any], Awaitable[None]], methods: list[Any], calls: int, concurrency: int
) -> None:
    """One call per method, READY, wait for the go line, then `calls` calls from
    `concurrency` workers; prints the CPU seconds that took."""
    for method in methods:
        await call(method)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    remaining = calls

    async def worker(index: int) -> None:
        nonlocal remaining
        method = methods[index % len(methods)]
        while remaining > 0:
            remaining -= 1
            await call(method)

    started = time.process_time()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    print(f"{time.process_time() - started}", flush=True)


async def load_future(port: int, calls: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CHANNELS)
    ]
    methods: list[Any] = [channel.unary_unary(METHOD) for channel in channels]

    def settle(waiter: asyncio.Future[Any], call: Any) -> None:
        if not waiter.done():
            waiter.set_result(call)

    async def call(method: Any) -> None:
        waiter = loop.create_future()
        future = method.future(b"", metadata=METADATA, timeout=10)
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(settle, waiter, f))
        done = await waiter
        done.result()
        done.trailing_metadata()

    await _warm_up_then_drive(call, methods, calls, concurrency)
    for channel in channels:
        channel.close()


async def load_threads(port: int, calls: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    pool = futures.ThreadPoolExecutor(concurrency)
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(CHANNELS)
    ]
    methods: list[Any] = [channel.unary_unary(METHOD) for channel in channels]

    def blocking(method: Any) -> None:
        _, done = method.with_call(b"", metadata=METADATA, timeout=10)
        done.trailing_metadata()

    async def call(method: Any) -> None:
        await loop.run_in_executor(pool, blocking, method)

    await _warm_up_then_drive(call, methods, calls, concurrency)
    for channel in channels:
        channel.close()
    pool.shutdown()


async def load_cython(port: int, calls: int, concurrency: int) -> None:
    # grpc.aio's own Cython call object (private API) awaited inline: no wrapper, no task
    # (not cancel-safe: the floor under what the gateway does, `load_core`).
    channels = [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CHANNELS)
    ]
    cython_channels: list[Any] = [channel._channel for channel in channels]  # type: ignore[attr-defined]
    method = METHOD.encode()

    async def call(channel: Any) -> None:
        cython_call = channel.call(method, time.time() + 10, None, None, 0)
        await cython_call.unary_unary(b"", METADATA, None)
        if not cython_call.is_ok():
            raise RuntimeError(cython_call._status.details())
        cython_call._status.trailing_metadata()

    await _warm_up_then_drive(call, cython_channels, calls, concurrency)
    for channel in channels:
        await channel.close()


async def load_core(port: int, calls: int, concurrency: int) -> None:
    # The gateway's own way of calling (gateway.unary_rpc.CoreUnaryRpc).
    from google.protobuf.wrappers_pb2 import BytesValue

    from gateway.unary_rpc import CoreUnaryRpc

    channels = [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CHANNELS)
    ]
    # Bytes as they come (the other styles do not parse the 5 KB payload either).
    keep: Any = bytes
    rpcs = [CoreUnaryRpc(channel, METHOD, keep) for channel in channels]
    empty = BytesValue()  # serialises to b"", as the other styles send

    async def call(rpc: Any) -> None:
        await rpc(empty, 10.0, METADATA)

    await _warm_up_then_drive(call, rpcs, calls, concurrency)
    for channel in channels:
        await channel.close()


async def load_grpclib(port: int, calls: int, concurrency: int) -> None:
    # Not a dependency of the project: `pip install grpclib==0.4.9` to run this style.
    from grpclib.client import (  # type: ignore[import-not-found, unused-ignore]
        Channel,
        UnaryUnaryMethod,
    )
    from grpclib.encoding.base import (  # type: ignore[import-not-found, unused-ignore]
        CodecBase,
    )

    class RawCodec(CodecBase):  # type: ignore[misc, unused-ignore]
        __content_subtype__ = "proto"

        def encode(self, message: Any, message_type: Any) -> bytes:
            return bytes(message)

        def decode(self, data: bytes, message_type: Any) -> Any:
            return data

    channels = [Channel("127.0.0.1", port, codec=RawCodec()) for _ in range(CHANNELS)]
    methods = [UnaryUnaryMethod(channel, METHOD, bytes, bytes) for channel in channels]

    async def call(method: Any) -> None:
        async with method.open(metadata=METADATA, timeout=10) as stream:
            await stream.send_message(b"", end=True)
            await stream.recv_message()
            await stream.recv_trailing_metadata()

    await _warm_up_then_drive(call, methods, calls, concurrency)
    for channel in channels:
        channel.close()


async def load_pyqwest(port: int, calls: int, concurrency: int) -> None:
    # Not a dependency of the project: `pip install pyqwest` to run this style.
    import pyqwest  # type: ignore[import-not-found, unused-ignore]

    transports = [
        pyqwest.HTTPTransport(http_version=pyqwest.HTTPVersion.HTTP2, enable_otel=False)
        for _ in range(CHANNELS)
    ]
    clients = [pyqwest.Client(t) for t in transports]
    url = f"http://127.0.0.1:{port}{METHOD}"
    headers = pyqwest.Headers(
        [
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "10S"),
            ("authorization", "Bearer k"),
            ("x-namespace", "ns"),
            ("x-request-id", "r1"),
        ]
    )
    body = b"\x00\x00\x00\x00\x00"

    async def call(client: Any) -> None:
        response = await client.post(url, headers, body)
        assert response.trailers.get("grpc-status") == "0", response.trailers
        assert len(response.content) == len(PAYLOAD) + 5

    await _warm_up_then_drive(call, clients, calls, concurrency)


async def load(port: int, calls: int, concurrency: int, style: str = "aio") -> None:
    options: list[tuple[str, Any]] = [("grpc.use_local_subchannel_pool", 1)]
    if style.startswith("gwopts-"):
        # The gateway's options without those whose name contains the suffix.
        from gateway.config import GatewayConfig
        from gateway.upstream import channel_options

        left_out = style.removeprefix("gwopts-")
        options += [o for o in channel_options(GatewayConfig()) if left_out not in o[0]]
    elif style in ("gwopts", "gwnohc"):
        from gateway.config import GatewayConfig
        from gateway.upstream import channel_options

        options += [
            option
            for option in channel_options(GatewayConfig())
            if style == "gwopts" or option[0] != "grpc.service_config"
        ]
    channels = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(CHANNELS)
    ]
    methods: list[Any] = [channel.unary_unary(METHOD) for channel in channels]

    async def call(method: Any) -> None:
        rpc = method(b"", metadata=METADATA, timeout=10)
        await rpc
        await rpc.trailing_metadata()

    await _warm_up_then_drive(call, methods, calls, concurrency)
    for channel in channels:
        await channel.close()


LEGACY = os.environ.get("FLOOR_LEGACY", POLLING_IO_EXPERIMENTS)


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    legacy_server = args[0] == "serve" and "legacy" in args[1]
    if legacy_server or (args[0] == "load" and args[-1].endswith("legacy")):
        env["GRPC_EXPERIMENTS"] = LEGACY
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.experiments.floor", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "READY":
        raise RuntimeError(f"{args} did not start")
    return process


def drive(
    variants: list[str], calls: int, concurrency: int, rounds: int, clients: list[str]
) -> None:
    servers = {}
    for index, variant in enumerate(variants):
        port = 52100 + index
        servers[variant] = (_start(["serve", variant, str(port)]), port)
    # A run is a (server variant, client style) pair.
    pairs = [(variant, client) for variant in variants for client in clients]
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {p: [] for p in pairs}
    try:
        for round_index in range(rounds):
            shift = round_index % len(pairs)
            for variant, style in pairs[shift:] + pairs[:shift]:
                server, port = servers[variant]
                client = _start(["load", str(port), str(calls), str(concurrency), style])
                before = cpu_seconds(server.pid)
                wall = time.monotonic()
                assert client.stdin is not None
                assert client.stdout is not None
                client.stdin.write("GO\n")
                client.stdin.flush()
                client_cpu = float(client.stdout.readline())
                wall = time.monotonic() - wall
                spent = cpu_seconds(server.pid) - before
                client.wait()
                results[(variant, style)].append(
                    (spent / calls * 1e6, client_cpu / calls * 1e6, calls / wall)
                )
    finally:
        for server, _ in servers.values():
            server.kill()
            server.wait()
    print(
        f"{'server':14} {'client':7} {'server µs/call':>15} {'client µs/call':>15} {'calls/s':>9}"
        f"  (median of {rounds})"
    )
    for pair in pairs:
        server_us = statistics.median(r[0] for r in results[pair])
        client_us = statistics.median(r[1] for r in results[pair])
        rate = statistics.median(r[2] for r in results[pair])
        print(
            f"{pair[0]:14} {pair[1]:7} {server_us:15.0f} {client_us:15.0f} {rate:9.0f}"
            f"  {VARIANTS[pair[0]]}; "
            + CLIENTS.get(pair[1], "gateway options without " + pair[1][7:])
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        import uvloop

        port, calls, concurrency = (int(a) for a in sys.argv[2:5])
        style = sys.argv[5]
        if style == "future":
            uvloop.run(load_future(port, calls, concurrency))
        elif style == "legacy":
            uvloop.run(load(port, calls, concurrency, "aio"))
        elif style == "grpclib":
            uvloop.run(load_grpclib(port, calls, concurrency))
        elif style == "cython-legacy":
            uvloop.run(load_cython(port, calls, concurrency))
        elif style == "core-legacy":
            uvloop.run(load_core(port, calls, concurrency))
        elif style in ("threads", "threads-legacy"):
            uvloop.run(load_threads(port, calls, concurrency))
        elif style == "pyqwest":
            uvloop.run(load_pyqwest(port, calls, concurrency))
        else:
            uvloop.run(load(port, calls, concurrency, style))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--clients", default="aio")
    args = parser.parse_args()
    drive(
        args.variants.split(","),
        args.calls,
        args.concurrency,
        args.rounds,
        args.clients.split(","),
    )


if __name__ == "__main__":
    main()
