"""One `/metrics` for all workers of a server: whichever worker a scrape reaches merges them all.

With `--workers N` the kernel hands a scrape to any one worker, whose own
counters are a 1/N sample. So each worker also answers its own exposition on a
Unix socket in the workers' shared directory (`runtime.worker`), and the
worker that gets the scrape reads its siblings' and sums every sample with the
same name and labels: counters, histogram buckets, sums and counts, the
in-flight gauges and the process metrics (memory, CPU, open files) all add up;
the start time is the earliest worker's, the fd limit the largest.

Chosen over prometheus-client's multiprocess mode, which keeps every value in
an mmap file and so needs its own Counter/Histogram objects (a lock and a file
write per value) instead of the plain-number bumps recorded per request here:
this costs nothing per request, only at scrape time (docs/performance.md, "Workers").
What it gives up: the counts of a worker that died are gone with it (the sum
drops, which Prometheus reads as a counter reset, as after a restart).
`execgate_metrics_workers` says how many workers a scrape merged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from runtime.worker import Worker

# Process metrics that do not add up over workers (memory, CPU and open files do):
# the server started when its first worker did; each worker has the same fd limit.
_NOT_SUMMED: Final[dict[str, Callable[[float, float], float]]] = {
    "process_start_time_seconds": min,
    "process_max_fds": max,
}
SIBLING_TIMEOUT_S: Final = 1.0  # a worker that does not answer in time is left out
# A sibling's exposition is a few tens of KB; far more is not one of ours.
MAX_EXPOSITION_BYTES: Final = 16 * 1024 * 1024

Exposition = Callable[[], bytes]


class WorkerMetricsSharing:
    """Serves `own` to sibling workers and merges theirs into each scrape."""

    def __init__(self, worker: Worker, name: str, own: Exposition) -> None:
        self._directory = worker.directory
        self._name = name
        self._own = own
        self._socket = worker.directory / f"{name}-metrics-{worker.index}.sock"
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._socket.unlink(missing_ok=True)  # left by the worker this one replaces
        self._server = await asyncio.start_unix_server(self._answer, path=str(self._socket))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._socket.unlink(missing_ok=True)

    async def exposition(self) -> bytes:
        """The whole server's metrics: this worker's and every sibling's that answers."""
        siblings = [
            path
            for path in sorted(self._directory.glob(f"{self._name}-metrics-*.sock"))
            if path != self._socket
        ]
        answers = await asyncio.gather(*(_read_sibling(path) for path in siblings))
        texts = [self._own(), *(answer for answer in answers if answer is not None)]
        return merge_expositions(texts)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self._own())
            await writer.drain()
        except ConnectionError:
            pass  # the asking worker gave up
        finally:
            writer.close()


async def _read_sibling(path: Path) -> bytes | None:
    try:
        async with asyncio.timeout(SIBLING_TIMEOUT_S):
            reader, writer = await asyncio.open_unix_connection(str(path))
            try:
                data = await reader.read(MAX_EXPOSITION_BYTES)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):  # gone, restarting, or stuck: left out of this scrape
        return None
    return data


def merge_expositions(texts: Sequence[bytes]) -> bytes:
    """Exposition texts of several workers as one, each sample summed over the workers."""
    merged: dict[str, Metric] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type)
                sums[family.name] = {}
            values = sums[family.name]
            combine = _NOT_SUMMED.get(family.name)
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                before = values.get(key)
                if before is None:
                    values[key] = sample.value
                elif combine is None:
                    values[key] = before + sample.value
                else:
                    values[key] = combine(before, sample.value)
    families = []
    for name, family in merged.items():
        for (sample_name, labels), value in sums[name].items():
            family.add_sample(sample_name, dict(labels), value)
        families.append(family)
    families.append(
        GaugeMetricFamily(
            "execgate_metrics_workers",
            "Worker processes whose metrics this scrape merged.",
            len(texts),
        )
    )
    registry = CollectorRegistry()
    registry.register(_Fixed(families))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families
