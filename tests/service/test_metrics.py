"""Metrics of the real service scraped over HTTP: RPCs by method and code, RPC and store latency."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import ServiceMetrics
from service.metrics_endpoint import MetricsEndpoint, parse_metrics_listen
from tests.service.test_cli import service_cli
from tests.support.running_service import RunningService, Stubs, auth
from tests.support.slow_guarded import slow_guarded_server

READER = "execgate.retrievers.v1.ExecutionService"
WRITER = "execgate.retrievers.v1.ExecutionWriterService"
MISSING_EXECUTION = "exec_metricsmissing000000000"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture
async def metrics_url(running_service: RunningService) -> AsyncIterator[str]:
    endpoint = MetricsEndpoint(running_service.server.metrics)
    port = await endpoint.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        await endpoint.stop()


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return parse(await response.text())


async def scrape_when_idle(url: str, timeout_s: float = 10.0) -> Samples:
    """The samples once no RPC is in flight, i.e. once every finished call is recorded.

    A call that ends in `context.abort` has sent its status before the guard's
    `finally` records it, so a client can see the answer a moment before the
    counters move; the in-flight gauge drops in that same step.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        samples = await scrape(url)
        if samples[("execgate_service_rpcs_in_flight", frozenset())] == 0:
            return samples
        assert asyncio.get_running_loop().time() < deadline, "RPCs still in flight"
        await asyncio.sleep(0.01)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def method_labels(
    service: str, method: str, grpc_type: str = "unary", **more: str
) -> frozenset[tuple[str, str]]:
    """The labels grpc-ecosystem's middleware gives a method (and, with `grpc_code`, a status)."""
    return labels(grpc_type=grpc_type, grpc_service=service, grpc_method=method, **more)


@pytest.mark.asyncio
async def test_rpcs_are_counted_by_method_and_code_and_timed(
    running_service: RunningService, service_stubs: Stubs, metrics_url: str
) -> None:
    demo = running_service.demo
    metadata = auth(demo.api_key)
    request = service_pb2.GetExecutionRequest(
        retriever_id=demo.retriever.name, execution_id=demo.executions["completed_10"]
    )
    await service_stubs.reader.GetExecution(request, metadata=metadata)
    await service_stubs.reader.GetExecution(request, metadata=metadata)
    request.execution_id = MISSING_EXECUTION
    with pytest.raises(grpc.aio.AioRpcError) as not_found:
        await service_stubs.reader.GetExecution(request, metadata=metadata)
    assert not_found.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
        await service_stubs.reader.GetExecution(request, metadata=auth("not-a-key"))
    assert unauthenticated.value.code() is grpc.StatusCode.UNAUTHENTICATED

    samples = await scrape_when_idle(metrics_url)
    handled = "grpc_server_handled_total"
    get = method_labels(READER, "GetExecution")
    assert samples[(handled, get | {("grpc_code", "OK")})] == 2
    assert samples[(handled, get | {("grpc_code", "NotFound")})] == 1
    assert samples[(handled, get | {("grpc_code", "Unauthenticated")})] == 1
    assert {name_labels for name_labels in samples if name_labels[0] == handled} == {
        (handled, get | {("grpc_code", code)}) for code in ("OK", "NotFound", "Unauthenticated")
    }
    assert samples[("grpc_server_started_total", get)] == 4
    assert samples[("grpc_server_handling_seconds_count", get)] == 4
    total = samples[("grpc_server_handling_seconds_sum", get)]
    assert 0 < total < 10
    assert samples[("process_open_fds", frozenset())] > 0
    assert samples[("process_resident_memory_bytes", frozenset())] > 0
    assert samples[("execgate_service_rpcs_in_flight", frozenset())] == 0

    store_count = "execgate_service_store_duration_seconds_count"
    # Found and not found each read the store; the unauthenticated call never got that far.
    assert samples[(store_count, labels(operation="get_execution"))] == 3
    # The demo key is looked up once and then cached; the unknown one is looked up too.
    assert samples[(store_count, labels(operation="find_api_key"))] == 2
    buckets = [
        value
        for (name, sample_labels), value in samples.items()
        if name == "execgate_service_store_duration_seconds_bucket"
        and ("operation", "get_execution") in sample_labels
    ]
    assert buckets == sorted(buckets)  # cumulative, in the order of `le`
    assert buckets[-1] == 3  # +Inf holds every observation


@pytest.mark.asyncio
async def test_store_errors_are_counted_but_domain_refusals_are_not(
    running_service: RunningService, service_stubs: Stubs, metrics_url: str
) -> None:
    demo = running_service.demo
    metadata = auth(demo.api_key)
    fail = writer_pb2.FailExecutionRequest(
        retriever_id=demo.retriever.name, execution_id=MISSING_EXECUTION, error="boom"
    )
    # The store raises NotFound for an execution it does not have ...
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await service_stubs.writer.FailExecution(fail, metadata=metadata)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    # ... while refusing to change a completed one is the service's decision, not a store error.
    fail.execution_id = demo.executions["completed_10"]
    with pytest.raises(grpc.aio.AioRpcError) as terminal:
        await service_stubs.writer.FailExecution(fail, metadata=metadata)
    assert terminal.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    samples = await scrape_when_idle(metrics_url)
    errors = "execgate_service_store_errors_total"
    assert samples[(errors, labels(operation="update_execution", error="NotFound"))] == 1
    assert [key for key in samples if key[0] == errors] == [
        (errors, labels(operation="update_execution", error="NotFound"))
    ]
    store_count = "execgate_service_store_duration_seconds_count"
    assert samples[(store_count, labels(operation="update_execution"))] == 2
    handled = "grpc_server_handled_total"
    fail_call = method_labels(WRITER, "FailExecution")
    assert samples[(handled, fail_call | {("grpc_code", "NotFound")})] == 1
    assert samples[(handled, fail_call | {("grpc_code", "FailedPrecondition")})] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("0", None),
        ("", None),
        (" ", None),
    ],
)
def test_metrics_listen_values(value: str, expected: tuple[str, int] | None) -> None:
    assert parse_metrics_listen(value) == expected


@pytest.mark.parametrize("value", ["9464", "localhost", ":9464", "host:port", "host:70000"])
def test_metrics_listen_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_metrics_listen(value)


async def _in_flight(metrics: ServiceMetrics, count: int) -> None:
    """Wait (up to 10 s) until the guard holds `count` calls."""
    for _ in range(1000):
        if metrics.in_flight == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"in flight: {metrics.in_flight}, expected {count}")


@pytest.mark.asyncio
async def test_calls_cut_short_are_counted_as_deadline_exceeded_or_cancelled() -> None:
    # A handler slow enough for the client to give up first; not one of the service's
    # own (they answer in microseconds), but wrapped by the same guard.
    metrics = ServiceMetrics()
    async with slow_guarded_server(metrics, max_in_flight=8) as sleep:
        with pytest.raises(grpc.aio.AioRpcError) as expired:
            await sleep(b"", timeout=0.2)
        assert expired.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        await _in_flight(metrics, 0)  # the expired call has left the guard
        call = sleep(b"")
        await _in_flight(metrics, 1)  # cancelled only once the guard holds it
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(100):  # the server learns of the cancellation a little later
            if metrics.in_flight == 0:
                break
            await asyncio.sleep(0.01)
    samples = parse(metrics.exposition().decode())
    handled = "grpc_server_handled_total"
    sleep_call = method_labels("test.Slow", "Sleep")
    assert samples[(handled, sleep_call | {("grpc_code", "DeadlineExceeded")})] == 1
    assert samples[(handled, sleep_call | {("grpc_code", "Canceled")})] == 1
    assert samples[("execgate_service_rpcs_in_flight", frozenset())] == 0


@pytest.mark.slow  # starts the service's process
def test_serve_refuses_a_metrics_address_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = service_cli(
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--metrics-listen",
            f"127.0.0.1:{port}",
            env={"EXECGATE_UVLOOP": "0"},
        )
    assert result.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
