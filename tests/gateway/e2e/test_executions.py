"""REST → gateway → real gRPC service → SQLite, all on 127.0.0.1 (port 0), with the demo data.

Bodies are checked against the contract's JSON schemas (the repo copy of the
OpenAPI file) and against CONTRACT.md's presence and absence rules.
"""

from __future__ import annotations

import gzip
import io
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from gateway.config import GatewayConfig
from service.demo import PIPELINE
from tests.support.contract_schemas import schema_errors
from tests.support.gateway_harness import RunningGateway, raw_request, running_gateway
from tests.support.running_service import RunningService

ALWAYS_PRESENT = {
    "retriever_id",
    "execution_id",
    "status",
    "documents",
    "pagination",
    "stage_statistics",
    "budget",
    "warnings",
    "optimization_applied",
    "created_at",
    "stages_completed",
    "total_stages",
}
NULLABLE = {
    "cached_at",
    "error",
    "optimization_summary",
    "learned_fusion_context",
    "completed_at",
    "current_stage",
}
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
DEMO_STATUS = {
    "completed_10": "completed",
    "completed_1000": "completed",
    "failed": "failed",
    "processing": "processing",
    "pending": "pending",
}
GET_ROUTE = "/v1/retrievers/{retriever_id}/executions/{execution_id}"


@pytest_asyncio.fixture
async def http(running_service: RunningService) -> AsyncIterator[aiohttp.ClientSession]:
    demo = running_service.demo
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        yield session


def _execution_url(gateway: RunningGateway, service: RunningService, key: str) -> str:
    retriever = service.demo.retriever.id
    return f"{gateway.base_url}/v1/retrievers/{retriever}/executions/{service.demo.executions[key]}"


def _check_error(body: Any, status: int, code: str | None) -> dict[str, Any]:
    assert schema_errors("ErrorResponse", body) == []
    assert set(body) == {"success", "status", "error"}
    assert body["success"] is False
    assert body["status"] == status
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "code", "details"}
    assert error["code"] == code
    return error


@pytest.mark.asyncio
@pytest.mark.parametrize("key", sorted(DEMO_STATUS))
async def test_every_demo_execution_matches_the_contract(
    gateway: RunningGateway,
    running_service: RunningService,
    http: aiohttp.ClientSession,
    key: str,
) -> None:
    async with http.get(_execution_url(gateway, running_service, key)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        body = await response.json()
        cache_control = response.headers["Cache-Control"]
        etag = response.headers.get("ETag")
    assert schema_errors("ExecutionDetail", body) == []
    status = DEMO_STATUS[key]
    assert set(body) == ALWAYS_PRESENT | NULLABLE  # every field, and never `results`
    assert body["status"] == status
    assert body["execution_id"] == running_service.demo.executions[key]
    assert body["retriever_id"] == running_service.demo.retriever.id
    assert RFC3339_UTC.fullmatch(body["created_at"])
    terminal = status in ("completed", "failed")
    assert (body["completed_at"] is not None) is terminal
    if terminal:
        assert RFC3339_UTC.fullmatch(body["completed_at"])
        assert body["current_stage"] is None
    assert (body["error"] is not None) is (status == "failed")
    assert body["stages_completed"] <= body["total_stages"]
    if body["optimization_summary"] is not None:
        assert body["optimization_applied"] is True
    assert isinstance(body["pagination"], dict)
    assert isinstance(body["budget"], dict)
    statistics = body["stage_statistics"]
    assert schema_errors("RetrieverExecutionStatistics", statistics) == []
    # Pipeline order (the demo's), not alphabetical; a pending one has no stages yet.
    assert list(statistics["stages"]) == list(PIPELINE[: len(statistics["stages"])])
    for stage in statistics["stages"].values():
        assert schema_errors("StageStatistics", stage) == []
        expected = stage["output_count"] / stage["input_count"] if stage["input_count"] else 0
        assert stage["efficiency"] == pytest.approx(expected)
    for name in ("stages_completed", "total_stages"):
        assert type(body[name]) is int
    # Terminal executions never change: cacheable with a strong tag; others are not.
    if terminal:
        assert cache_control == "private"
        assert etag is not None
        assert etag.startswith('"')
    else:
        assert cache_control == "no-store"
    if key == "completed_1000":
        assert len(body["documents"]) == 1000
    if key == "completed_10":
        assert len(body["documents"]) == 10


@pytest.mark.asyncio
async def test_legacy_results_only_on_request(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    url = _execution_url(gateway, running_service, "completed_10")
    async with http.get(url, params={"include_legacy_results": "true"}) as response:
        body = await response.json()
    assert schema_errors("ExecutionDetail", body) == []
    assert body["results"] == body["documents"]
    assert len(body["results"]) == 10
    async with http.get(url, params={"include_legacy_results": "false"}) as response:
        assert "results" not in await response.json()
    async with http.get(url, params={"include_legacy_results": "maybe"}) as response:
        assert response.status == 422
        body = await response.json()
    assert schema_errors("HTTPValidationError", body) == []
    (issue,) = body["detail"]
    assert issue["loc"] == ["query", "include_legacy_results"]
    async with http.get(url, params={"colour": "red"}) as response:
        assert response.status == 422
        (issue,) = (await response.json())["detail"]
    assert issue["loc"] == ["query", "colour"]
    assert "include_legacy_results" in issue["msg"]


@pytest.mark.asyncio
async def test_retriever_by_name_answers_the_same_execution(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    demo = running_service.demo
    execution = demo.executions["failed"]
    by_id = f"{gateway.base_url}/v1/retrievers/{demo.retriever.id}/executions/{execution}"
    by_name = f"{gateway.base_url}/v1/retrievers/{demo.retriever.name}/executions/{execution}"
    async with http.get(by_id) as first, http.get(by_name) as second:
        assert (first.status, second.status) == (200, 200)
        assert await first.read() == await second.read()
    assert (await second.json())["retriever_id"] == demo.retriever.id


async def _list(
    http: aiohttp.ClientSession,
    gateway: RunningGateway,
    retriever: str,
    params: dict[str, str],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    url = f"{gateway.base_url}/v1/retrievers/{retriever}/executions/list"
    async with http.post(url, params=params, json=body) as response:
        assert response.status == 200, await response.text()
        page: dict[str, Any] = await response.json()
    assert set(page) == {"results", "pagination"}
    assert set(page["pagination"]) == {"total", "limit", "offset", "has_next", "next_cursor"}
    pagination = page["pagination"]
    # What the real API's generated clients insist on (CONTRACT.md, List executions).
    assert type(pagination["total"]) is int
    assert type(pagination["limit"]) is int
    assert type(pagination["offset"]) is int
    assert type(pagination["has_next"]) is bool
    for summary in page["results"]:
        assert set(summary) == {
            "execution_id",
            "retriever_id",
            "status",
            "created_at",
            "completed_at",
            "duration_ms",
            "credits_used",
            "total_processed",
            "total_returned",
            "cache_hit_rate",
            "inputs_hash",
            "query_summary",
            "trace_id",
        }
        in_flight = summary["status"] in ("pending", "processing")
        assert (summary["completed_at"] is None) is in_flight
        for number in ("duration_ms", "credits_used"):
            assert type(summary[number]) in (int, float)
            assert summary[number] >= 0
        assert type(summary["total_processed"]) is int
        assert type(summary["total_returned"]) is int
        rate = summary["cache_hit_rate"]
        assert rate is None or 0 <= rate <= 1
        for text in ("inputs_hash", "query_summary", "trace_id"):
            assert summary[text] is None or type(summary[text]) is str
    return page


@pytest.mark.asyncio
async def test_list_pagination_by_offset_and_by_cursor(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    demo = running_service.demo
    everything = await _list(http, gateway, demo.retriever.name, {"include_total": "true"})
    ids = [summary["execution_id"] for summary in everything["results"]]
    assert sorted(ids) == sorted(demo.executions.values())
    assert everything["pagination"]["total"] == len(ids)
    created = [summary["created_at"] for summary in everything["results"]]
    assert created == sorted(created, reverse=True)  # newest first

    by_offset = await _list(http, gateway, demo.retriever.id, {"limit": "2", "offset": "2"})
    assert [s["execution_id"] for s in by_offset["results"]] == ids[2:4]
    assert by_offset["pagination"]["total"] == 5  # a lower bound: 2 skipped, 2 here, 1 more
    assert by_offset["pagination"]["offset"] == 2
    assert by_offset["pagination"]["has_next"] is True

    walked: list[str] = []
    params = {"limit": "2"}
    for _ in range(10):
        page = await _list(http, gateway, demo.retriever.id, params)
        walked += [summary["execution_id"] for summary in page["results"]]
        cursor = page["pagination"]["next_cursor"]
        assert (cursor is not None) is page["pagination"]["has_next"]
        if cursor is None:
            break
        params = {"limit": "2", "cursor": cursor}
    assert walked == ids

    completed = await _list(http, gateway, demo.retriever.id, {}, {"status": "completed"})
    assert {s["status"] for s in completed["results"]} == {"completed"}
    assert len(completed["results"]) == 2

    running = await _list(http, gateway, demo.retriever.id, {}, {"status": "running"})
    assert {s["status"] for s in running["results"]} == {"pending", "processing"}


@pytest.mark.asyncio
async def test_list_validation(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.base_url}/v1/retrievers/{running_service.demo.retriever.id}/executions/list"
    async with http.post(url, json={"status": "finished"}) as response:
        assert response.status == 422
        (issue,) = (await response.json())["detail"]
    assert issue["loc"] == ["body", "status"]
    async with http.post(url, params={"limit": "many"}) as response:
        assert response.status == 422
    async with http.post(url, params={"cursor": "not-a-cursor"}) as response:
        assert response.status == 400
        _check_error(await response.json(), 400, "invalid_cursor")


@pytest.mark.asyncio
async def test_error_paths_with_their_envelopes(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    demo = running_service.demo
    base = f"{gateway.base_url}/v1/retrievers"
    execution = demo.executions["completed_10"]
    url = f"{base}/{demo.retriever.id}/executions/{execution}"

    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(url) as response:
            assert response.status == 401
            _check_error(await response.json(), 401, "missing_api_key")
        headers = {"Authorization": "Bearer egk_not_a_real_key"}
        async with anonymous.get(url, headers=headers) as response:
            assert response.status == 401
            _check_error(await response.json(), 401, "invalid_api_key")

    missing = "exec_" + "A" * 22
    async with http.get(f"{base}/{demo.retriever.id}/executions/{missing}") as response:
        assert response.status == 404
        error = _check_error(await response.json(), 404, "execution_not_found")
        assert error["details"] == {"resource": "execution", "id": missing}
        assert error["type"] == "NotFoundError"
    async with http.get(f"{base}/ret_nope/executions/{execution}") as response:
        assert response.status == 404
        _check_error(await response.json(), 404, "retriever_not_found")
    async with http.get(f"{base}/{demo.retriever.id}/executions/not-an-id") as response:
        assert response.status == 400
        _check_error(await response.json(), 400, "invalid_execution_id")
    headers = {"X-Namespace": "no-such-namespace"}
    async with http.get(url, headers=headers) as response:
        assert response.status == 404
        _check_error(await response.json(), 404, "namespace_not_found")

    async with http.get(f"{gateway.base_url}/v1/nothing/here") as response:
        assert response.status == 404
        _check_error(await response.json(), 404, "route_not_found")
    async with http.put(url) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD"
        _check_error(await response.json(), 405, "method_not_allowed")
    list_url = f"{base}/{demo.retriever.id}/executions/list"
    async with http.post(list_url, data=io.BytesIO(b"x" * (2 * 1024 * 1024))) as response:
        assert response.status == 413
        _check_error(await response.json(), 413, "payload_too_large")


@pytest.mark.asyncio
async def test_etag_304_is_still_authenticated(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    url = _execution_url(gateway, running_service, "completed_10")
    async with http.get(url) as response:
        etag = response.headers["ETag"]
    async with http.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert await response.read() == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == "private"
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(url, headers={"If-None-Match": etag}) as response,
    ):
        assert response.status == 401
    processing = _execution_url(gateway, running_service, "processing")
    async with http.get(processing, headers={"If-None-Match": '"stale", W/"weak"'}) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.asyncio
async def test_gzip_of_the_large_execution(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    demo = running_service.demo
    path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['completed_1000']}"
    auth = f"Authorization: Bearer {demo.api_key}\r\n".encode()
    head = f"GET {path} HTTP/1.1\r\nHost: t\r\n".encode() + auth
    zipped = await raw_request(gateway.port, head + b"Accept-Encoding: gzip\r\n\r\n")
    plain = await raw_request(gateway.port, head + b"\r\n")
    assert zipped.status == plain.status == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) * 4 < len(plain.body)


@pytest.mark.asyncio
async def test_operations_endpoints_and_metrics(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{gateway.base_url}/healthz") as response:
        assert response.status == 200
    async with http.get(f"{gateway.base_url}/readyz") as response:
        assert response.status == 200
    url = _execution_url(gateway, running_service, "failed")
    for _ in range(3):
        async with http.get(url) as response:
            assert response.status == 200
    async with http.get(f"{gateway.base_url}/metrics") as response:
        text = await response.text()
    labels = f'code="200",method="GET",route="{GET_ROUTE}"'
    assert f"http_requests_total{{{labels}}} 3.0" in text
    method = (
        'grpc_method="GetExecution",grpc_service="execgate.retrievers.v1.ExecutionService",'
        'grpc_type="unary"'
    )
    assert f"grpc_client_handling_seconds_count{{{method}}} 3.0" in text


@pytest.mark.asyncio
async def test_backend_down_is_503_with_retry_after() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = GatewayConfig(port=0, backend=f"127.0.0.1:{closed_port}", ready_timeout_s=0.5)
    async with running_gateway(config) as gateway, aiohttp.ClientSession() as http:
        url = f"{gateway.base_url}/v1/retrievers/ret_x/executions/exec_y"
        async with http.get(url) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            error = _check_error(await response.json(), 503, "backend_unavailable")
        assert str(closed_port) not in orjson.dumps(error).decode()
        async with http.get(f"{gateway.base_url}/readyz") as response:
            assert response.status == 503
        async with http.get(f"{gateway.base_url}/healthz") as response:
            assert response.status == 200
