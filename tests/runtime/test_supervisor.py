"""`--workers N` end to end: single-process mode under its supervisor, on loopback.

One port shared by every worker, /metrics counting the whole server, a worker
killed under load replaced while the other connections keep being answered,
SIGTERM under load without a failed request, and a server that cannot start
reported by the supervisor's exit status.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2
from prometheus_client.parser import text_string_to_metric_families

from service.demo import DemoData
from tests.support.running_service import auth, stubs
from tests.support.supervised import Supervised, listening_pids, seeded_store, supervised

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
EXECUTION_ROUTE = "/v1/retrievers/{retriever_id}/executions/{execution_id}"


def _serve(store_url: str, workers: int, *extra: str) -> list[str]:
    # The load below sends one key's requests as fast as it can: past the per-key rate
    # limit's burst within seconds. These tests are about the workers, so it is off.
    return [
        *("singleprocess", "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"),
        *("--store", store_url, "--workers", str(workers), "--shutdown-timeout-seconds", "10"),
        *("--rate-limit-per-second", "0", *extra),
    ]


def _url(server: Supervised, demo: DemoData, key: str = "completed_10") -> str:
    return (
        f"http://{server.addresses[0]}/v1/retrievers/{demo.retriever.name}"
        f"/executions/{demo.executions[key]}"
    )


def _headers(demo: DemoData) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}


async def _requests_counted(server: Supervised) -> tuple[float, float]:
    """(GETs of an execution answered 200, workers merged) from one scrape of /metrics."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        http.get(f"http://{server.addresses[0]}/metrics") as response,
    ):
        text = await response.text()
    counted = workers = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total" and sample.labels == {
                "route": EXECUTION_ROUTE,
                "method": "GET",
                "code": "200",
            }:
                counted = sample.value
            if sample.name == "execgate_metrics_workers":
                workers = sample.value
    return counted, workers


async def _stop(server: Supervised) -> int:
    server.process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(server.process.wait, 60)


@pytest.mark.asyncio
async def test_workers_share_one_port_and_metrics_count_the_whole_server(tmp_path: Path) -> None:
    store_url, demo = await seeded_store(tmp_path)
    ready_file = tmp_path / "ready.json"
    command = _serve(store_url, 3, "--ready-file", str(ready_file))
    async with supervised(command, tmp_path / "server.log") as server:
        workers = set(server.worker_pids().values())
        assert len(workers) == 3
        # The supervisor's, written once all listen: what a launcher waits for.
        assert json.loads(ready_file.read_text()) == {
            "pid": server.process.pid,
            "http": server.addresses[0],
            "grpc": server.addresses[1],
        }
        assert listening_pids(server.port(0)) == workers  # REST
        assert listening_pids(server.port(1)) == workers  # gRPC
        sent = 60
        # A new connection per request: the kernel spreads them over the workers.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(headers=_headers(demo), connector=connector) as http:
            for _ in range(sent):
                async with http.get(_url(server, demo)) as response:
                    assert response.status == 200
        for _ in range(6):  # whichever worker answers the scrape
            assert await _requests_counted(server) == (sent, 3)
        assert await _stop(server) == 0


@dataclass
class _Load:
    """Clients on their own keep-alive connections, GET in a loop until `stop`."""

    url: str
    headers: dict[str, str]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    answered: list[float] = field(default_factory=list)  # monotonic times of 200s
    failures: list[str] = field(default_factory=list)
    refused: int = 0  # connection refused: no request was sent

    async def client(self, answered_after: list[int], index: int, since: list[float]) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(headers=self.headers, connector=connector) as http:
            while not self.stop.is_set():
                try:
                    async with http.get(self.url) as response:
                        await response.read()
                        if response.status != 200:
                            self.failures.append(f"HTTP {response.status}")
                            continue
                except aiohttp.ClientConnectorError:
                    self.refused += 1
                    await asyncio.sleep(0.01)
                    continue
                except aiohttp.ClientError as error:
                    self.failures.append(repr(error))
                    continue
                now = time.monotonic()
                self.answered.append(now)
                if since and now > since[0]:
                    answered_after[index] += 1


async def _write_until(stop: asyncio.Event, address: str, demo: DemoData, acked: list[str]) -> None:
    """StartExecution in a loop on its own channel; records each acknowledged execution."""
    metadata = auth(demo.api_key, demo.namespace.name)
    # Its own connection (no shared subchannel): spread over the workers like the clients.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        writer = stubs(channel).writer
        while not stop.is_set():
            try:
                started = await writer.StartExecution(
                    writer_pb2.StartExecutionRequest(
                        retriever_id=demo.retriever.id, total_stages=1
                    ),
                    metadata=metadata,
                    timeout=10,
                )
            except grpc.aio.AioRpcError as error:
                # The worker holding this channel's connection was killed mid-call.
                if error.code() is not grpc.StatusCode.UNAVAILABLE:
                    raise
                await asyncio.sleep(0.01)
                continue
            acked.append(started.execution.execution_id)


async def _all_readable(address: str, demo: DemoData, execution_ids: Sequence[str]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        reader = stubs(channel).reader
        for execution_id in execution_ids:
            detail = await reader.GetExecution(
                service_pb2.GetExecutionRequest(
                    retriever_id=demo.retriever.id, execution_id=execution_id
                ),
                metadata=auth(demo.api_key, demo.namespace.name),
                timeout=10,
            )
            assert detail.execution_id == execution_id


@pytest.mark.asyncio
async def test_a_worker_killed_under_load_is_replaced_and_nothing_acknowledged_is_lost(
    tmp_path: Path,
) -> None:
    store_url, demo = await seeded_store(tmp_path)
    async with supervised(_serve(store_url, 2), tmp_path / "server.log") as server:
        load = _Load(_url(server, demo), _headers(demo))
        clients = 6
        answered_after = [0] * clients
        killed_at: list[float] = []
        acked: list[str] = []
        tasks = [
            *(
                asyncio.create_task(load.client(answered_after, i, killed_at))
                for i in range(clients)
            ),
            *(
                asyncio.create_task(_write_until(load.stop, server.addresses[1], demo, acked))
                for _ in range(3)
            ),
        ]
        await asyncio.sleep(1.0)
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        killed_at.append(time.monotonic())
        killed_wall = time.time()
        restarted = await server.wait_for(
            lambda e: e["message"] == "worker started" and e["worker"] == 0 and e["pid"] != victim
        )
        assert restarted["ts"] - killed_wall < 2.0  # replaced within 2 s
        await server.wait_for(
            lambda e: e["message"] == "worker ready" and e["pid"] == restarted["pid"]
        )
        await asyncio.sleep(1.0)
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)

        # At most the request in flight on each connection the killed worker held failed;
        # every client, reconnected, went on being answered.
        assert len(load.failures) <= clients, load.failures
        assert all(count > 0 for count in answered_after), answered_after
        exited = [e for e in server.events() if e["message"] == "worker exited; restarting"]
        assert exited[0]["pid"] == victim
        assert exited[0]["signal"] == "SIGKILL"
        assert acked
        await _all_readable(server.addresses[1], demo, acked)
        assert await _stop(server) == 0


@pytest.mark.asyncio
async def test_sigterm_under_load_fails_no_request(tmp_path: Path) -> None:
    store_url, demo = await seeded_store(tmp_path)
    async with supervised(
        _serve(store_url, 2, "--drain-seconds", "1"), tmp_path / "server.log"
    ) as server:
        load = _Load(_url(server, demo), _headers(demo))
        counts = [0] * 8
        tasks = [asyncio.create_task(load.client(counts, i, [])) for i in range(8)]
        await asyncio.sleep(1.0)
        answered_before = len(load.answered)
        assert await _stop(server) == 0
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert answered_before > 0
    assert load.failures == []
    assert len(load.answered) > answered_before  # served through the drain


@pytest.mark.asyncio
async def test_workers_that_cannot_start_stop_the_supervisor_with_an_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")  # the store's directory cannot be made under it
    unopenable = f"sqlite:///{tmp_path / 'a-file' / 'execgate.db'}"
    log = tmp_path / "server.log"
    async with supervised(_serve(unopenable, 2), log, wait_ready=False) as server:
        status = await asyncio.to_thread(server.process.wait, 120)
        events = server.events()
    assert status == 1
    failures = [e for e in events if e["message"] == "worker exited before it was ready"]
    assert len(failures) >= 5
    assert all(e["exit_code"] == 1 for e in failures)
    assert events[-1]["message"] == "workers stopped" or any(
        e["message"].startswith("workers keep exiting") for e in events
    )


@pytest.mark.asyncio
async def test_the_service_metrics_endpoint_counts_every_worker(tmp_path: Path) -> None:
    store_url, demo = await seeded_store(tmp_path)
    command = [
        *("service", "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"),
        *("--store", store_url, "--workers", "2"),
    ]
    async with supervised(command, tmp_path / "service.log") as server:
        grpc_address, metrics_address = server.addresses
        sent = 30
        request = service_pb2.GetExecutionRequest(
            retriever_id=demo.retriever.id, execution_id=demo.executions["completed_10"]
        )
        for _ in range(sent):  # a connection per call: spread over the workers
            options = [("grpc.use_local_subchannel_pool", 1)]
            async with grpc.aio.insecure_channel(grpc_address, options=options) as channel:
                await stubs(channel).reader.GetExecution(
                    request, metadata=auth(demo.api_key, demo.namespace.name), timeout=10
                )
        for _ in range(4):
            async with (
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
                http.get(f"http://{metrics_address}/metrics") as response,
            ):
                text = await response.text()
            samples = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            key = (
                ("grpc_code", "OK"),
                ("grpc_method", "GetExecution"),
                ("grpc_service", "execgate.retrievers.v1.ExecutionService"),
                ("grpc_type", "unary"),
            )
            assert samples[("grpc_server_handled_total", key)] == sent
            assert samples[("execgate_metrics_workers", ())] == 2
        assert await _stop(server) == 0
