"""The named changes `bench.experiments.launch` can apply before starting a process."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def patch(owner: object, name: str, value: object) -> None:
    """Replace `owner.name` (a module attribute or a method) for the rest of the process."""
    setattr(owner, name, value)


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _nothing() -> None:
    pass


def _service_options(*extra: tuple[str, Any]) -> Callable[[], None]:
    def apply() -> None:
        server = _module("service.server")
        patch(server, "SERVER_OPTIONS", (*server.SERVER_OPTIONS, *extra))

    return apply


def _no_service_access_log() -> None:
    cli = _module("service.cli")
    original = cli.ServeSettings

    def settings(**kwargs: Any) -> Any:
        kwargs["access_log"] = False
        return original(**kwargs)

    patch(cli, "ServeSettings", settings)


def _channel_options(*extra: tuple[str, Any]) -> Callable[[], None]:
    def apply() -> None:
        upstream = _module("gateway.upstream")
        original = upstream.channel_options

        def options(config: Any) -> list[tuple[str, Any]]:
            named = dict(original(config))
            named.update(extra)
            return list(named.items())

        patch(upstream, "channel_options", options)

    return apply


SERVICE: dict[str, Callable[[], None]] = {
    "base": _nothing,
    "throughput": _service_options(("grpc.optimization_target", "throughput")),
    "latency": _service_options(("grpc.optimization_target", "latency")),
    "nobdp": _service_options(("grpc.http2.bdp_probe", 0)),
    "maxstreams100": _service_options(("grpc.max_concurrent_streams", 100)),
    "window1m": _service_options(("grpc.http2.lookahead_bytes", 1 << 20)),
    "noaccesslog": _no_service_access_log,
}

GATEWAY: dict[str, Callable[[], None]] = {
    "base": _nothing,
    "noretry": _channel_options(("grpc.enable_retries", 0)),
    "throughput": _channel_options(("grpc.optimization_target", "throughput")),
    "nobdp": _channel_options(("grpc.http2.bdp_probe", 0)),
    "window1m": _channel_options(("grpc.http2.lookahead_bytes", 1 << 20)),
    "nohealthcheck": _channel_options(("grpc.service_config_disable_resolution", 1)),
    # iomgr's TCP reads (the polling I/O): bigger first reads for 340 KB responses.
    "readchunk": _channel_options(
        ("grpc.experimental.tcp_read_chunk_size", 256 << 10),
        ("grpc.experimental.tcp_min_read_chunk_size", 64 << 10),
    ),
    # No service config at all (pick_first, no health checking, no retry policy).
    "bareconfig": _channel_options(("grpc.service_config", "{}"), ("grpc.enable_retries", 0)),
}


def _access_log_without_io() -> None:
    """Access log lines built (request id, peer, JSON) but not written to the stream."""

    def flush(self: Any) -> None:
        self._pending.clear()

    patch(_module("service.access_log").AccessLog, "flush", flush)


def _access_log_without_peer() -> None:
    """Access log without `context.peer()` (the peer written as "-")."""
    access_log = _module("service.access_log").AccessLog
    original = access_log.write

    def write(
        self: Any, request_id: str, method: str, code: str, duration: float, peer: str
    ) -> None:
        original(self, request_id, method, code, duration, "-")

    patch(access_log, "write", write)


SERVICE["accesslog-noio"] = _access_log_without_io
SERVICE["accesslog-nopeer"] = _access_log_without_peer


def _threaded(workers: int) -> Callable[[], None]:
    def apply() -> None:
        from bench.experiments import threaded_service

        threaded_service.apply(workers)

    return apply


def _registered_method() -> None:
    """Upstream multicallables registered with the channel (as generated stubs do)."""
    dispatcher = _module("gateway.dispatch").UnaryDispatcher

    class _Channel:
        def __init__(self, channel: Any) -> None:
            self._channel = channel

        def unary_unary(self, method: str, **kwargs: Any) -> Any:
            return self._channel.unary_unary(method, _registered_method=True, **kwargs)

    original = dispatcher.__init__

    def init(self: Any, route: Any, channel: Any, *args: Any) -> None:
        original(self, route, _Channel(channel), *args)

    patch(dispatcher, "__init__", init)


SERVICE["threaded4"] = _threaded(4)
SERVICE["threaded8"] = _threaded(8)
GATEWAY["registered"] = _registered_method
GATEWAY["frame1m"] = _channel_options(("grpc.http2.max_frame_size", 1 << 20))
GATEWAY["frame1m+window1m"] = _channel_options(
    ("grpc.http2.max_frame_size", 1 << 20), ("grpc.http2.lookahead_bytes", 1 << 20)
)
SERVICE["frame1m"] = _service_options(("grpc.http2.max_frame_size", 1 << 20))


def _gc(freeze: bool, threshold: tuple[int, int, int] | None) -> Callable[[], None]:
    """Collector tuning: freeze what start-up allocated (after 3 s), and/or fewer collections."""

    def apply() -> None:
        import gc
        import threading

        if threshold is not None:
            gc.set_threshold(*threshold)
        if freeze:
            timer = threading.Timer(3.0, gc.freeze)
            timer.daemon = True
            timer.start()

    return apply


for _table in (SERVICE, GATEWAY):
    _table["gcfreeze"] = _gc(True, None)
    _table["gcthreshold"] = _gc(False, (20_000, 50, 100))
    _table["gcboth"] = _gc(True, (20_000, 50, 100))


def _gc_stats() -> None:
    """Time spent in the cyclic collector, per generation, written every 2 s to a file
    named by env K_GC_STATS_DIR (for measuring, not a product feature)."""
    import gc
    import os
    import threading
    import time

    spent = [0.0, 0.0, 0.0]
    count = [0, 0, 0]
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            generation = info["generation"]
            spent[generation] += time.thread_time() - started[0]
            count[generation] += 1

    gc.callbacks.append(callback)
    path = os.path.join(os.environ.get("K_GC_STATS_DIR", "."), f"gc-{os.getpid()}.txt")

    def dump() -> None:
        while True:
            time.sleep(2)
            with open(path, "w") as out:
                out.write(f"{time.process_time()} {spent} {count}\n")

    threading.Thread(target=dump, daemon=True).start()


SERVICE["gcstats"] = _gc_stats
GATEWAY["gcstats"] = _gc_stats


def _no_grpc() -> None:
    """Decomposition only: the first upstream call of a route is real; after that every
    call answers with that reply and metadata at once (mapping, rendering and writing as
    usual, no gRPC): the gateway's cost without the gRPC client."""
    dispatcher = _module("gateway.dispatch").UnaryDispatcher
    original = dispatcher.__init__

    def init(self: Any, *args: Any) -> None:
        original(self, *args)
        real = self._rpc
        recorded: list[Any] = []

        async def rpc(request: Any, timeout_s: float, metadata: Any) -> Any:
            if not recorded:
                recorded.append(await real(request, timeout_s, metadata))
            return recorded[0]

        self._rpc = rpc

    patch(dispatcher, "__init__", init)


def _public_rpc() -> None:
    """Before/after of `gateway.unary_rpc.CoreUnaryRpc`: every call via grpc.aio's public API."""
    patch(_module("gateway.unary_rpc"), "_takes_core_path", lambda channel: False)


GATEWAY["publicrpc"] = _public_rpc
GATEWAY["nogrpc"] = _no_grpc


def _terminal_cache() -> None:
    """Prototype: terminal executions (never change again) kept in memory after the first read."""
    store_module = _module("service.store.sqlite")
    terminal = _module("service.executions.records").TERMINAL
    original = store_module.SqliteStore.get_execution
    cache: dict[tuple[str, str, str], Any] = {}

    async def get_execution(
        self: Any, namespace_id: str, retriever_id: str, execution_id: str
    ) -> Any:
        key = (namespace_id, retriever_id, execution_id)
        row = cache.get(key)
        if row is None:
            row = await original(self, namespace_id, retriever_id, execution_id)
            if row is not None and row.status in terminal:
                cache[key] = row
        return row

    patch(store_module.SqliteStore, "get_execution", get_execution)


SERVICE["terminalcache"] = _terminal_cache


def _mallopt(mmap_threshold: int, trim_threshold: int) -> Callable[[], None]:
    """glibc: large buffers (a 340 KB response) from the heap, not a fresh mmap per buffer;
    freed memory kept for reuse instead of trimmed (no page faults per request)."""

    def apply() -> None:
        _module("runtime.allocator").keep_large_buffers_on_heap(mmap_threshold, trim_threshold)

    return apply


for _table in (SERVICE, GATEWAY):
    _table["mallopt"] = _mallopt(16 << 20, 64 << 20)
    _table["mallopt-small"] = _mallopt(1 << 20, 8 << 20)
    # Large buffers (a 340 KB response) back to mmap: returned to the OS when freed.
    # Combine with `default-malloc`, or the CLI's own thresholds override it.
    _table["mmap256k"] = _mallopt(256 << 10, 8 << 20)


def _default_malloc(cli: str) -> Callable[[], None]:
    """Before/after of `runtime.allocator`: the CLI skips the allocator thresholds."""

    def apply() -> None:
        patch(_module(cli), "keep_large_buffers_on_heap", lambda: False)

    return apply


SERVICE["default-malloc"] = _default_malloc("service.cli")
GATEWAY["default-malloc"] = _default_malloc("gateway.cli")


def _grpc_experiments(value: str) -> Callable[[], None]:
    """gRPC core experiments (GRPC_EXPERIMENTS), set before grpc is first imported."""

    def apply() -> None:
        import os

        os.environ["GRPC_EXPERIMENTS"] = value

    return apply


# The product runs on gRPC core's polling I/O (`runtime.grpc_io`, applied by
# `launch.py` too): `legacyio` is the same as `base` (kept for the NOTES' commands),
# `eventengine` is gRPC's default (list it first: before grpc is imported).
_LEGACY_IO = _module("runtime.grpc_io").POLLING_IO_EXPERIMENTS
for _table in (SERVICE, GATEWAY):
    _table["legacyio"] = _grpc_experiments(_LEGACY_IO)
    _table["eventengine"] = _grpc_experiments("")
    _table["noeeclient"] = _grpc_experiments("-event_engine_client")
    _table["noeelistener"] = _grpc_experiments("-event_engine_listener")
    # One more gRPC core experiment forced on, on top of the product's polling I/O.
    for _experiment in (
        "fuse_filters",
        "prioritize_finished_requests",
        "tcp_frame_size_tuning",
        "tcp_rcv_lowat",
        "pollset_alternative",
        "free_large_allocator",
        "header_data_frame",
        "memory_optimization_01",
        "memory_optimization_02",
        "optimization_03",
        "optimization_04",
        "optimization_05",
        "optimization_06",
    ):
        _table[f"exp-{_experiment}"] = _grpc_experiments(f"{_LEGACY_IO},{_experiment}")


# Memory growth study (bench/memory_growth.py): glibc arena limit, periodic
# trimming, and a reader of the allocator's own totals.


def _arena_max(arenas: int) -> Callable[[], None]:
    """glibc: at most `arenas` malloc arenas (as MALLOC_ARENA_MAX), set at start-up."""

    def apply() -> None:
        _module("runtime.allocator").limit_arenas(arenas)

    return apply


def _periodic_trim(period_s: float) -> Callable[[], None]:
    """glibc: malloc_trim(0) every `period_s` (free pages of every arena back to the OS)."""

    def apply() -> None:
        import threading
        import time

        release = _module("runtime.allocator").release_free_memory

        def loop() -> None:
            while True:
                time.sleep(period_s)
                release()

        threading.Thread(target=loop, daemon=True, name="malloc-trim").start()

    return apply


def _mallinfo_file() -> None:
    """Every 0.5 s, glibc's mallinfo2 totals over all arenas as JSON in
    `<tempdir>/execgate-mallinfo-<pid>.json` (for measuring, not a product feature)."""
    import ctypes
    import json
    import os
    import tempfile
    import threading
    import time

    names = (
        "arena",
        "ordblks",
        "smblks",
        "hblks",
        "hblkhd",
        "usmblks",
        "fsmblks",
        "uordblks",
        "fordblks",
        "keepcost",
    )

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in names]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = Mallinfo2
    path = os.path.join(tempfile.gettempdir(), f"execgate-mallinfo-{os.getpid()}.json")

    def loop() -> None:
        while True:
            info = mallinfo2()
            text = json.dumps({name: getattr(info, name) for name in names})
            with open(path + ".tmp", "w") as out:
                out.write(text)
            os.replace(path + ".tmp", path)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True, name="mallinfo").start()


for _table in (SERVICE, GATEWAY):
    _table["arena1"] = _arena_max(1)
    _table["arena2"] = _arena_max(2)
    _table["trim2s"] = _periodic_trim(2.0)
    _table["mallinfo"] = _mallinfo_file


# `shieldcall` and `donecall` (the grpc.aio leak fix candidates of NOTES.md) were removed
# once `donecall`'s form was adopted in gateway/dispatch.py (`wait_until_done`).


def _no_idle_release() -> None:
    """The gateway without `gateway.memory_release` (free heap kept after bursts)."""

    async def never(*args: Any, **kwargs: Any) -> None:
        return None

    patch(_module("gateway.app"), "release_memory_when_idle", never)


GATEWAY["noidlerelease"] = _no_idle_release


def _setcode_failures() -> None:
    """Service failures answered with set_code/set_details + return (one finishing batch)
    instead of `await context.abort(...)` (its own batch, then AbortError)."""
    registry = _module("service.rpc.registry")
    original = registry.guarded

    class _Failed(Exception):
        pass

    class _SetCodeContext:
        def __init__(self, context: Any) -> None:
            self._context = context

        def __getattr__(self, name: str) -> Any:
            return getattr(self._context, name)

        async def abort(self, code: Any, details: str = "", trailing_metadata: Any = ()) -> None:
            self._context.set_code(code)
            self._context.set_details(details)
            self._context.set_trailing_metadata(trailing_metadata)
            raise _Failed

    def guarded(*args: Any) -> Any:
        inner = original(*args)

        async def call(raw_request: bytes, context: Any) -> Any:
            try:
                return await inner(raw_request, _SetCodeContext(context))
            except _Failed:
                return b""

        return call

    patch(registry, "guarded", guarded)


SERVICE["setcode"] = _setcode_failures


def _no_retry_policy() -> None:
    """The gateway's service config without its retry policy (round robin and health kept)."""
    upstream = _module("gateway.upstream")
    import json

    config = json.loads(upstream.service_config())
    del config["methodConfig"]
    text = json.dumps(config)
    patch(upstream, "service_config", lambda: text)


def _deferred_observation() -> None:
    """Access log line and request metrics written after the response, not before it."""
    import asyncio

    access_log = _module("gateway.access_log").AccessLog
    metrics = _module("gateway.metrics").GatewayMetrics
    write, observe = access_log.write, metrics.observe_request

    def deferred_write(self: Any, *args: Any) -> None:
        asyncio.get_running_loop().call_soon(write, self, *args)

    def deferred_observe(self: Any, *args: Any) -> None:
        asyncio.get_running_loop().call_soon(observe, self, *args)

    patch(access_log, "write", deferred_write)
    patch(metrics, "observe_request", deferred_observe)


GATEWAY["noretrypolicy"] = _no_retry_policy
GATEWAY["deferlog"] = _deferred_observation


def _object_census() -> None:
    """On SIGUSR1, the live Python objects by type (top 15), as JSON in
    `<tempdir>/execgate-census-<pid>.json` (for finding leaks, not a product feature)."""
    import collections
    import gc
    import json
    import os
    import signal
    import tempfile

    def census(signum: int, frame: Any) -> None:
        gc.collect()
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        path = os.path.join(tempfile.gettempdir(), f"execgate-census-{os.getpid()}.json")
        with open(path, "w") as out:
            json.dump({"objects": sum(counts.values()), "top": counts.most_common(15)}, out)

    signal.signal(signal.SIGUSR1, census)


SERVICE["census"] = _object_census
