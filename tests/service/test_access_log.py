"""The access log: one JSON line per RPC with request id, method, code, duration and peer.

In process (the lines written to a buffer) for the fields, and through
`python -m service serve` for the switch and the metrics port of the CLI.
"""

from __future__ import annotations

import io
import json
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from execgate.retrievers.v1 import execution_service_pb2 as service_pb2
from prometheus_client.parser import text_string_to_metric_families

from runtime.ready_file import METRICS
from service.access_log import AccessLog
from service.demo import DemoData
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers
from tests.service.test_cli import json_of, service_cli
from tests.support.running_service import Stubs, auth, start_service, stubs
from tests.support.service_process import running

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

GET = "/execgate.retrievers.v1.ExecutionService/GetExecution"
LIST = "/execgate.retrievers.v1.ExecutionService/ListExecutions"
FIELDS = {"ts", "level", "logger", "msg"} | {
    "request_id",
    "grpc_method",
    "grpc_code",
    "duration_ms",
    "peer",
}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@asynccontextmanager
async def logging_service(
    directory: Path, access_log: AccessLog
) -> AsyncIterator[tuple[Stubs, DemoData]]:
    async with (
        start_service(directory, access_log=access_log) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        yield stubs(channel), service.demo


def lines_of(text: str) -> list[dict[str, Any]]:
    """The access lines of a log (every line is JSON; the others are from other loggers)."""
    records = [json.loads(line) for line in text.splitlines()]
    return [record for record in records if record["logger"] == "execgate.service.access"]


@pytest.mark.asyncio
async def test_one_json_line_per_rpc_without_the_key(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    access_log = AccessLog(buffer)
    async with logging_service(tmp_path, access_log) as (calls, demo):
        get = service_pb2.GetExecutionRequest(
            retriever_id=demo.retriever.name, execution_id=demo.executions["completed_10"]
        )
        await calls.reader.GetExecution(
            get, metadata=auth(demo.api_key, request_id="req-from-client-1")
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await calls.reader.GetExecution(get, metadata=auth(demo.api_key + "x"))
        await calls.reader.ListExecutions(
            service_pb2.ListExecutionsRequest(retriever_id=demo.retriever.name),
            metadata=auth(demo.api_key, namespace=demo.namespace.name),
        )
        access_log.flush()
    text = buffer.getvalue().decode()
    lines = lines_of(text)
    assert len(lines) == 3 == len(text.splitlines())
    assert all(set(line) == FIELDS for line in lines)
    assert all(ISO_UTC.fullmatch(line["ts"]) for line in lines)
    ok, unauthenticated, listing = lines
    assert (ok["grpc_method"], ok["grpc_code"], ok["request_id"]) == (
        GET,
        "OK",
        "req-from-client-1",
    )
    assert (unauthenticated["grpc_method"], unauthenticated["grpc_code"]) == (
        GET,
        "UNAUTHENTICATED",
    )
    assert (listing["grpc_method"], listing["grpc_code"]) == (LIST, "OK")
    # Without an x-request-id, each call gets its own generated one.
    assert re.fullmatch(r"[0-9a-f]{32}", unauthenticated["request_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", listing["request_id"])
    assert unauthenticated["request_id"] != listing["request_id"]
    for line in lines:
        assert 0 < line["duration_ms"] < 10_000
        assert re.fullmatch(r"ipv4:127\.0\.0\.1:\d+", line["peer"])
    assert demo.api_key not in text
    assert "Bearer" not in text


@pytest.mark.asyncio
async def test_calls_through_the_in_process_channel_get_no_line_of_their_own(
    tmp_path: Path,
) -> None:
    # Single-process mode: the gateway's access line covers the REST request; the same
    # handlers still log the calls that arrive over gRPC.
    buffer = io.BytesIO()
    access_log = AccessLog(buffer)
    async with start_service(tmp_path, access_log=access_log) as service:
        demo = service.demo
        get = service_pb2.GetExecutionRequest(
            retriever_id=demo.retriever.name, execution_id=demo.executions["completed_10"]
        )
        async with InProcessChannel(service_handlers(service.server)) as in_process:
            await stubs(in_process).reader.GetExecution(
                get, metadata=auth(demo.api_key, request_id="in-process-1")
            )
        async with grpc.aio.insecure_channel(service.address) as channel:
            await stubs(channel).reader.GetExecution(
                get, metadata=auth(demo.api_key, request_id="over-grpc-1")
            )
    access_log.flush()
    assert [line["request_id"] for line in lines_of(buffer.getvalue().decode())] == ["over-grpc-1"]


@pytest.mark.parametrize(
    ("access_log", "flags", "environment"),
    [
        (True, ("--metrics-listen", "127.0.0.1:0", "--access-log"), {}),
        (True, ("--metrics-listen", "127.0.0.1:0"), {}),  # on by default
        (False, ("--metrics-listen", "127.0.0.1:0", "--no-access-log"), {}),
        (False, (), {"EXECGATE_METRICS_LISTEN": "127.0.0.1:0", "EXECGATE_ACCESS_LOG": "0"}),
        (False, (), {"EXECGATE_METRICS_LISTEN": "127.0.0.1:0", "EXECGATE_ACCESS_LOG": "off"}),
        (False, ("--metrics-listen", "127.0.0.1:0", "--access-log=no"), {}),
    ],
)
@pytest.mark.asyncio
async def test_serve_logs_rpcs_and_serves_metrics(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    access_log: bool,
    flags: tuple[str, ...],
    environment: dict[str, str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # the child process inherits the environment
    store = f"sqlite:///{tmp_path / 'serve.db'}"
    demo = json_of(service_cli("demo", "--json", "--store", store))
    log = tmp_path / "serve.log"
    with running(store, log, *flags) as service:
        async with grpc.aio.insecure_channel(service.address) as channel:
            await stubs(channel).reader.GetExecution(
                service_pb2.GetExecutionRequest(
                    retriever_id="product-search", execution_id=demo["executions"]["failed"]
                ),
                metadata=auth(demo["api_key"], request_id="cli-request-1"),
            )
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{service.ready.address(METRICS)}/metrics") as got,
        ):
            metrics = await got.text()
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=15) == 0
    counted = {
        (sample.labels["grpc_service"], sample.labels["grpc_method"], sample.labels["grpc_code"]): (
            sample.value
        )
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "grpc_server_handled_total"
    }
    assert counted == {(*GET.lstrip("/").split("/"), "OK"): 1}
    text = log.read_text()
    assert demo["api_key"] not in text
    lines = lines_of(text)
    if access_log:
        assert [(line["request_id"], line["grpc_code"]) for line in lines] == [
            ("cli-request-1", "OK")
        ]
    else:
        assert lines == []
