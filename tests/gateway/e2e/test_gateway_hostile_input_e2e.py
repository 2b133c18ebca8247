"""Inputs issue 16 found misread or answered 500, through a real gateway and service.

Routing by path before method, weak ETag comparison, no 304 for an in-flight execution,
Content-Encoding errors and gzip bombs, X-Request-Timeout syntax, repeated auth headers.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway.config import GatewayConfig
from tests.gateway.app.gateway_harness import (
    RawResponse,
    RunningGateway,
    raw_request,
    running_gateway,
)
from tests.running_service import RunningService


@pytest_asyncio.fixture
async def gateway(running_service: RunningService) -> AsyncIterator[RunningGateway]:
    config = GatewayConfig(port=0, backend=running_service.address, shutdown_timeout_s=2.0)
    async with running_gateway(config, with_docs=True) as running:
        yield running


@pytest_asyncio.fixture
async def http(running_service: RunningService) -> AsyncIterator[aiohttp.ClientSession]:
    demo = running_service.demo
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    async with aiohttp.ClientSession(
        headers=headers, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


def _executions(gateway: RunningGateway, service: RunningService) -> str:
    return f"{gateway.base_url}/v1/retrievers/{service.demo.retriever.id}/executions"


def _error(body: Any, status: int, code: str) -> dict[str, Any]:
    assert body["success"] is False
    assert body["status"] == status
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    return error


@pytest.mark.asyncio
async def test_the_list_path_with_get_is_405_allow_post(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{_executions(gateway, running_service)}/list") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        _error(await response.json(), 405, "method_not_allowed")


@pytest.mark.asyncio
async def test_weak_if_none_match_revalidates_a_completed_execution(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    url = (
        f"{_executions(gateway, running_service)}/{running_service.demo.executions['completed_10']}"
    )
    async with http.get(url) as response:
        etag = response.headers["ETag"]
    for header in (f"W/{etag}", f'"other", W/{etag}', "*"):
        async with http.get(url, headers={"If-None-Match": header}) as response:
            assert response.status == 304, header
    async with http.get(url, headers={"If-None-Match": 'W/"other"'}) as response:
        assert response.status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("state", ["processing", "pending"])
async def test_an_in_flight_execution_never_answers_304(
    gateway: RunningGateway,
    running_service: RunningService,
    http: aiohttp.ClientSession,
    state: str,
) -> None:
    url = f"{_executions(gateway, running_service)}/{running_service.demo.executions[state]}"
    async with http.get(url) as response:
        etag = response.headers.get("ETag")
        assert response.headers["Cache-Control"] == "no-store"
    for header in ["*", *([etag, f"W/{etag}"] if etag else [])]:
        async with http.get(url, headers={"If-None-Match": header}) as response:
            assert response.status == 200, header
            assert (await response.json())["status"] == state


async def _post_list(
    gateway: RunningGateway, service: RunningService, body: bytes, extra_headers: str
) -> RawResponse:
    demo = service.demo
    head = (
        f"POST /v1/retrievers/{demo.retriever.id}/executions/list HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {demo.api_key}\r\n"
        f"X-Namespace: {demo.namespace.name}\r\nContent-Type: application/json\r\n"
        f"{extra_headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return await raw_request(gateway.port, head.encode() + body)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", b"this is not gzip"),
        ("gzip", gzip.compress(b'{"status": "completed"}') + b"trailing bytes"),
        ("deflate", b"this is not deflate"),
        ("compress", b'{"status": "completed"}'),  # no coding aiohttp decodes
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}"))),
    ],
)
async def test_a_body_not_in_its_content_encoding_is_400(
    gateway: RunningGateway, running_service: RunningService, coding: str, body: bytes
) -> None:
    response = await _post_list(gateway, running_service, body, f"Content-Encoding: {coding}\r\n")
    assert response.status == 400
    error = _error(response.json(), 400, "invalid_header")
    assert error["details"] == {"header": "content-encoding"}


@pytest.mark.asyncio
async def test_a_gzip_body_is_decoded(
    gateway: RunningGateway, running_service: RunningService
) -> None:
    body = gzip.compress(b'{"status": "completed"}')
    response = await _post_list(gateway, running_service, body, "Content-Encoding: gzip\r\n")
    assert response.status == 200
    assert {summary["status"] for summary in response.json()["results"]} == {"completed"}


@pytest.mark.asyncio
async def test_a_gzip_bomb_is_413_without_inflating_it(
    gateway: RunningGateway, running_service: RunningService
) -> None:
    # 64 MiB of JSON whitespace in ~64 KB: over the 1 MiB body limit once decoded.
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    assert len(bomb) < 100 * 1024
    response = await _post_list(gateway, running_service, bomb, "Content-Encoding: gzip\r\n")
    assert response.status == 413
    _error(response.json(), 413, "payload_too_large")


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["1e-3", "5e-324", "\u0661", "\uff11", "1_0", "0.01", "-1"])
async def test_x_request_timeout_is_ascii_decimal_above_the_minimum(
    gateway: RunningGateway,
    running_service: RunningService,
    http: aiohttp.ClientSession,
    value: str,
) -> None:
    url = f"{_executions(gateway, running_service)}/{running_service.demo.executions['failed']}"
    async with http.get(url, headers={"X-Request-Timeout": value}) as response:
        assert response.status == 400
        error = _error(await response.json(), 400, "invalid_header")
        assert error["details"] == {"header": "x-request-timeout"}
    async with http.get(url, headers={"X-Request-Timeout": "2.5"}) as response:
        assert response.status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["Authorization", "X-Namespace"])
async def test_a_repeated_auth_header_is_400_before_the_service(
    gateway: RunningGateway, running_service: RunningService, name: str
) -> None:
    demo = running_service.demo
    values = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    second = "Bearer egk_someone_else" if name == "Authorization" else "ns_other"
    headers = [*values.items(), (name, second)]
    url = f"{_executions(gateway, running_service)}/{demo.executions['completed_10']}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        assert response.status == 400
        error = _error(await response.json(), 400, "invalid_header")
        assert error["details"] == {"header": name.lower()}
        assert "at most once" in error["message"]


async def _list_ids(
    http: aiohttp.ClientSession, url: str, params: list[tuple[str, str]]
) -> tuple[list[str], dict[str, Any]]:
    async with http.post(url, params=params) as response:
        assert response.status == 200, await response.text()
        page = await response.json()
    return [summary["execution_id"] for summary in page["results"]], page["pagination"]


@pytest.mark.asyncio
async def test_list_query_aliases_and_page_numbers(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    url = f"{_executions(gateway, running_service)}/list"
    everything, _ = await _list_ids(http, url, [])
    assert len(everything) == 5
    by_alias, pagination = await _list_ids(http, url, [("page_size", "2")])
    assert by_alias == everything[:2]
    assert pagination["limit"] == 2
    page_two, pagination = await _list_ids(http, url, [("page_size", "2"), ("page", "2")])
    assert page_two == everything[2:4]
    assert pagination["offset"] == 2
    same, _ = await _list_ids(http, url, [("limit", "2"), ("page_size", "2"), ("offset", "2")])
    assert same == page_two
    _, first = await _list_ids(http, url, [("limit", "2")])
    for name in ("cursor", "next_cursor", "after"):
        following, _ = await _list_ids(http, url, [("limit", "2"), (name, first["next_cursor"])])
        assert following == everything[2:4], name


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ([("limit", "0")], "limit"),
        ([("limit", "1001")], "limit"),
        ([("page_size", "5000")], "page_size"),
        ([("offset", "-1")], "offset"),
        ([("offset", "10001")], "offset"),
        ([("page", "0")], "page"),
        ([("limit", "2"), ("page_size", "3")], "page_size"),
        ([("cursor", "a"), ("after", "b")], "after"),
        ([("offset", "4"), ("page", "2")], "page"),
    ],
)
async def test_list_bounds_and_disagreeing_aliases_are_422(
    gateway: RunningGateway,
    running_service: RunningService,
    http: aiohttp.ClientSession,
    params: list[tuple[str, str]],
    loc: str,
) -> None:
    async with http.post(
        f"{_executions(gateway, running_service)}/list", params=params
    ) as response:
        assert response.status == 422
        (issue,) = (await response.json())["detail"]
    assert issue["loc"] == ["query", loc]


@pytest.mark.asyncio
async def test_an_unknown_list_body_key_is_422_naming_the_accepted_keys(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    url = f"{_executions(gateway, running_service)}/list"
    async with http.post(url, json={"status": "completed", "state": "x"}) as response:
        assert response.status == 422
        (issue,) = (await response.json())["detail"]
    assert issue["loc"] == ["body", "state"]
    assert issue["type"] == "extra_forbidden"
    assert "status, filters, sorts" in issue["msg"]


@pytest.mark.asyncio
async def test_the_documented_list_example_body_finds_demo_executions(
    gateway: RunningGateway, running_service: RunningService, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{gateway.base_url}/openapi.json") as response:
        document = await response.json()
    operation = document["paths"]["/v1/retrievers/{retriever_id}/executions/list"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    url = f"{_executions(gateway, running_service)}/list"
    async with http.post(url, json=example) as response:
        assert response.status == 200
        results = (await response.json())["results"]
    assert results
    assert {summary["status"] for summary in results} == {example["status"]}
