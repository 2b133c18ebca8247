"""No timing oracle: another tenant's namespace, retriever or execution is refused in the
time an unknown one is (CONTRACT.md, "Identity, tenancy, auth").

Benchmark-style: the service's own handlers (guard, authentication, resolution,
store) are called through the in-process channel, so the network's jitter does
not drown a gap of a few microseconds. Foreign and unknown calls alternate in a
shuffled order, so drift and load on the machine hit both kinds alike, and the
medians are compared. The bound is the larger of BOUND_US and BOUND_SHARE of
the unknown median: the absolute part sits well above the medians' spread on an
idle machine and well below the gap the cached foreign namespace name made; the
relative part lets the bound grow with a loaded machine's slowdown, which
stretches a real gap by the same factor. A real oracle shows in every attempt;
a median pushed over the bound by another process's burst rarely does twice,
so the best of three attempts counts. Figures: docs/performance.md.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_service_pb2_grpc

from service import admin, ids
from singleprocess.channel import InProcessChannel
from tests.support.running_service import Metadata, RunningService, Stubs, auth
from tests.support.service_tenants import Tenants, add_tenants

if TYPE_CHECKING:
    from execgate.retrievers.v1.execution_service_pb2_grpc import (
        ExecutionServiceAsyncStub as ReaderStub,
    )

BOUND_US = 6.0
BOUND_SHARE = 0.10
ROUNDS = 600  # of each kind, per attempt
WARM_UP = 50
ATTEMPTS = 3


@dataclass(frozen=True)
class Probe:
    """One kind of guess: the same call naming a foreign object or an unknown one."""

    metadata: Callable[[str], Metadata]  # the guess → the call's metadata
    request: Callable[[str], service_pb2.GetExecutionRequest]
    foreign: str
    unknown: str


@pytest_asyncio.fixture
async def reader(running_service: RunningService) -> AsyncIterator[ReaderStub]:
    """The service's handlers without the network: what the test measures is theirs."""
    channel = InProcessChannel(running_service.server.handlers)
    try:
        yield execution_service_pb2_grpc.ExecutionServiceStub(channel)
    finally:
        await channel.close()


@pytest_asyncio.fixture
async def tenants(running_service: RunningService, service_stubs: Stubs) -> Tenants:
    return await add_tenants(running_service, service_stubs)


async def probes(running_service: RunningService, tenants: Tenants) -> dict[str, Probe]:
    demo = running_service.demo
    # A retriever only the other tenant has (the shared fixture's has the demo's name).
    other_only = await admin.create_retriever(running_service.store, tenants.other.id, "secret")
    completed = demo.executions["completed_10"]

    def get(retriever: str, execution_id: str = completed) -> service_pb2.GetExecutionRequest:
        return service_pb2.GetExecutionRequest(retriever_id=retriever, execution_id=execution_id)

    demo_key = auth(demo.api_key)
    return {
        # The other tenant's key guesses the demo namespace's name.
        "namespace name": Probe(
            metadata=lambda name: auth(tenants.other_key, name),
            request=lambda _: get(demo.retriever.name),
            foreign=demo.namespace.name,
            unknown="no-such-namespace",
        ),
        "retriever name": Probe(
            metadata=lambda _: demo_key,
            request=lambda name: get(name),
            foreign=other_only.name,
            unknown="no-such-retriever",
        ),
        "retriever id": Probe(
            metadata=lambda _: demo_key,
            request=lambda retriever_id: get(retriever_id),
            foreign=other_only.id,
            unknown=ids.new_retriever_id(),
        ),
        "execution id": Probe(
            metadata=lambda _: demo_key,
            request=lambda execution_id: get(demo.retriever.name, execution_id),
            foreign=tenants.other_execution_id,
            unknown=ids.new_execution_id(),
        ),
    }


async def refusal_time_us(reader: ReaderStub, probe: Probe, guess: str) -> float:
    request, metadata = probe.request(guess), probe.metadata(guess)
    code = grpc.StatusCode.OK
    started = time.perf_counter_ns()
    try:
        await reader.GetExecution(request, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        code = error.code()
    elapsed = (time.perf_counter_ns() - started) / 1000
    assert code is grpc.StatusCode.NOT_FOUND, guess
    return elapsed


async def median_gap_us(reader: ReaderStub, probe: Probe) -> tuple[float, float, float]:
    """(foreign median - unknown median, foreign median, unknown median) in µs."""
    times: dict[str, list[float]] = {probe.foreign: [], probe.unknown: []}
    order = [probe.foreign, probe.unknown] * (ROUNDS + WARM_UP)
    random.Random(16).shuffle(order)
    for index, guess in enumerate(order):
        elapsed = await refusal_time_us(reader, probe, guess)
        if index >= 2 * WARM_UP:  # caches filled, code paths warm
            times[guess].append(elapsed)
    foreign = statistics.median(times[probe.foreign])
    unknown = statistics.median(times[probe.unknown])
    return foreign - unknown, foreign, unknown


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "kind", ["namespace name", "retriever name", "retriever id", "execution id"]
)
async def test_foreign_objects_are_refused_in_the_time_unknown_ones_are(
    running_service: RunningService, tenants: Tenants, reader: ReaderStub, kind: str
) -> None:
    probe = (await probes(running_service, tenants))[kind]
    attempts = []
    for _ in range(ATTEMPTS):
        gap, foreign, unknown = await median_gap_us(reader, probe)
        attempts.append(f"foreign {foreign:.1f} µs, unknown {unknown:.1f} µs")
        if abs(gap) <= max(BOUND_US, BOUND_SHARE * unknown):
            return
    pytest.fail(f"{kind}: the medians differ beyond the bound: {attempts}")
