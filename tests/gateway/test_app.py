"""The gateway app against a real gRPC probe backend: every failure path and HTTP behaviour.

Real sockets on 127.0.0.1, port 0; the backend is `probe_servicer.ProbeLibrary`
(the test-only library proto), so the routes come from annotations the gateway
has no code for.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from gateway.access_log import AccessLog
from gateway.app import ServiceNotFoundError, build_app, start_site
from gateway.config import GatewayConfig
from gateway.routing import RouteConfigError
from tests.support.gateway_harness import (
    RunningGateway,
    raw_request,
    running_gateway,
)
from tests.support.probe_servicer import (
    PROBE_ETAG,
    ProbeBackend,
    probe_backend,
    probe_gateway_config,
)

# CONTRACT.md's table, written out independently of gateway/errors/table.py.
CONTRACT_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}
SHELF_ROUTE = "/v1/shelves/{shelf_id}"
# CONTRACT.md's `type` vocabulary, written out.
CONTRACT_TYPES = {
    "BadRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "MethodNotAllowedError",
    "AlreadyExistsError",
    "PayloadTooLargeError",
    "URITooLongError",
    "UnsupportedMediaTypeError",
    "ExpectationFailedError",
    "TooManyRequestsError",
    "RequestHeaderFieldsTooLargeError",
    "ClientClosedRequestError",
    "InternalServerError",
    "NotImplementedError",
    "BadGatewayError",
    "ServiceUnavailableError",
    "GatewayTimeoutError",
}


def _config(probe: ProbeBackend, **changes: Any) -> GatewayConfig:
    return probe_gateway_config(
        probe, **{"max_body_bytes": 4096, "shutdown_timeout_s": 2.0, **changes}
    )


@pytest_asyncio.fixture
async def gateway(probe: ProbeBackend) -> AsyncIterator[RunningGateway]:
    async with running_gateway(_config(probe)) as running:
        yield running


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


def _assert_envelope(body: Any, status: int, code: str | None) -> dict[str, Any]:
    assert set(body) == {"success", "status", "error"}
    assert body["success"] is False
    assert body["status"] == status
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "code", "details"}
    assert error["code"] == code
    return error


@pytest.mark.asyncio
async def test_served_from_annotations_with_request_id(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{gateway.base_url}/v1/shelves/plain") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert len(response.headers["X-Request-Id"]) == 32
        assert await response.json() == {"id": "plain", "theme": "plain", "book_count": 3}
    headers = {"X-Request-Id": "client-id-1"}
    async with http.get(f"{gateway.base_url}/v1/shelves/plain", headers=headers) as response:
        assert response.headers["X-Request-Id"] == "client-id-1"
    async with http.post(
        f"{gateway.base_url}/v1/shelves", json={"id": "s1", "theme": "poetry"}
    ) as response:
        assert response.status == 200
        assert await response.json() == {"id": "s1", "theme": "poetry", "book_count": 0}


@pytest.mark.asyncio
@pytest.mark.parametrize(("code", "status"), sorted(CONTRACT_STATUS.items()))
async def test_status_table_row_by_row(
    gateway: RunningGateway, http: aiohttp.ClientSession, code: str, status: int
) -> None:
    async with http.get(f"{gateway.base_url}/v1/shelves/status-{code}") as response:
        assert response.status == status
        assert response.headers["Content-Type"] == "application/json"
        assert "X-Request-Id" in response.headers
        error = _assert_envelope(await response.json(), status, f"probe_{code.lower()}")
        assert error["details"] == {"probe": code.lower()}
        assert ("Retry-After" in response.headers) is (status == 503)


@pytest.mark.asyncio
async def test_runtime_errors_never_leak(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{gateway.base_url}/v1/shelves/crash") as response:
        assert response.status == 500
        text = await response.text()
        for leaked in ("secret", "RuntimeError", "class"):
            assert leaked not in text
    async with http.get(f"{gateway.base_url}/v1/shelves/bare-UNAVAILABLE") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        error = _assert_envelope(await response.json(), 503, "backend_unavailable")
        assert "10.1.2.3" not in error["message"]


@pytest.mark.asyncio
async def test_only_allow_listed_headers_reach_the_service(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    sent = {
        "Authorization": "Bearer key-1",
        "X-Namespace": "demo",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "X-Request-Id": "rid-7",
        "Grpc-Metadata-X-Admin": "yes",
        "Cookie": "session=1",
        "X-Custom": "1",
        "X-Request-Timeout": "3",
    }
    async with http.get(f"{gateway.base_url}/v1/shelves/echo", headers=sent) as response:
        assert response.status == 200
        received = orjson.loads((await response.json())["theme"])
    assert received["authorization"] == "Bearer key-1"
    assert received["x-namespace"] == "demo"
    assert received["traceparent"] == sent["traceparent"]
    assert received["x-request-id"] == "rid-7"
    sent_names = {name.lower() for name in sent}
    assert sent_names & set(received) == {
        "authorization",
        "x-namespace",
        "traceparent",
        "x-request-id",
    }
    assert not any(name.startswith("grpc-metadata") for name in received)


@pytest.mark.asyncio
async def test_unusable_header_is_a_400_naming_it(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    headers = {"X-Request-Timeout": "soon"}
    async with http.get(f"{gateway.base_url}/v1/shelves/plain", headers=headers) as response:
        assert response.status == 400
        error = _assert_envelope(await response.json(), 400, "invalid_header")
        assert error["details"] == {"header": "x-request-timeout"}


@pytest.mark.asyncio
async def test_deadline_from_client_header_is_504(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    headers = {"X-Request-Timeout": "0.3"}
    async with http.get(f"{gateway.base_url}/v1/shelves/sleep", headers=headers) as response:
        assert response.status == 504
        _assert_envelope(await response.json(), 504, "deadline_exceeded")
    assert time.monotonic() - started < 3


@pytest.mark.asyncio
async def test_client_timeout_is_clamped_to_the_maximum(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    config = _config(probe, default_timeout_s=0.2, max_timeout_s=0.4)
    async with running_gateway(config) as gateway:
        started = time.monotonic()
        headers = {"X-Request-Timeout": "600"}
        url = f"{gateway.base_url}/v1/shelves/sleep"
        async with http.get(url, headers=headers) as response:
            assert response.status == 504
        assert time.monotonic() - started < 3
        started = time.monotonic()
        async with http.get(url) as response:  # the default deadline applies too
            assert response.status == 504
        assert time.monotonic() - started < 3


@pytest.mark.asyncio
async def test_client_disconnect_cancels_the_upstream_call(
    gateway: RunningGateway, probe: ProbeBackend
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /v1/shelves/sleep HTTP/1.1\r\nHost: t\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(probe.servicer.started.wait(), 5)
    writer.close()
    await writer.wait_closed()
    disconnected = time.monotonic()
    await asyncio.wait_for(probe.servicer.cancelled.wait(), 1.0)
    assert time.monotonic() - disconnected < 1.0
    del reader


@pytest.mark.asyncio
async def test_etag_and_if_none_match(
    gateway: RunningGateway, probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.base_url}/v1/shelves/etag"
    async with http.get(url) as response:
        assert response.status == 200
        assert response.headers["ETag"] == PROBE_ETAG
        assert response.headers["Cache-Control"] == "private"
        assert "X-Internal" not in response.headers
    for header in (PROBE_ETAG, f'"other", {PROBE_ETAG}', "*", f"W/{PROBE_ETAG}"):
        calls = probe.servicer.calls
        async with http.get(url, headers={"If-None-Match": header}) as response:
            assert response.status == 304
            assert await response.read() == b""
            assert response.headers["ETag"] == PROBE_ETAG
            assert "X-Request-Id" in response.headers
        assert probe.servicer.calls == calls + 1  # the service still authorised the call
    for header in ('W/"other"', '"other"'):
        async with http.get(url, headers={"If-None-Match": header}) as response:
            assert response.status == 200


@pytest.mark.asyncio
async def test_gzip_when_accepted_and_large_enough(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.base_url}/v1/shelves/big"
    response = await raw_request(
        gateway.port,
        b"GET /v1/shelves/big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    assert response.status == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert orjson.loads(gzip.decompress(response.body))["theme"].startswith("abcdefghij")
    async with http.get(url, headers={"Accept-Encoding": "identity"}) as plain:
        assert "Content-Encoding" not in plain.headers
    small = await raw_request(
        gateway.port,
        b"GET /v1/shelves/plain HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    assert "content-encoding" not in small.headers


@pytest.mark.asyncio
async def test_request_body_errors(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    url = f"{gateway.base_url}/v1/shelves"
    async with http.post(url, data=b"{" + b" " * 5000 + b"}") as response:
        assert response.status == 413
        _assert_envelope(await response.json(), 413, "payload_too_large")
    headers = {"Content-Type": "text/plain"}
    async with http.post(url, data=b'{"id": "x"}', headers=headers) as response:
        assert response.status == 415
        _assert_envelope(await response.json(), 415, "unsupported_media_type")
    headers = {"Content-Type": "application/json"}
    async with http.post(url, data=b'{"id": ', headers=headers) as response:
        assert response.status == 400
        _assert_envelope(await response.json(), 400, "invalid_json")
    async with http.post(url, json={"id": "x", "colour": "red"}) as response:
        assert response.status == 422
        (issue,) = (await response.json())["detail"]
        assert issue["loc"] == ["body", "colour"]


@pytest.mark.asyncio
async def test_routing_errors(gateway: RunningGateway, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{gateway.base_url}/v2/nothing") as response:
        assert response.status == 404
        _assert_envelope(await response.json(), 404, "route_not_found")
    async with http.delete(f"{gateway.base_url}/v1/shelves") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        _assert_envelope(await response.json(), 405, "method_not_allowed")
    raw = await raw_request(gateway.port, b"GET /v1/shelves/a%00b HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.status == 400
    _assert_envelope(raw.json(), 400, "invalid_path")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /v1/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, None),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\n"
            + b"".join(b"X-H%d: 1\r\n" % i for i in range(100))
            + b"\r\n",
            431,
            "too_many_headers",
        ),
        (b"\x16\x03\x01garbage\r\n\r\n", 400, "malformed_request"),
    ],
)
async def test_requests_aiohttp_refuses_get_the_envelope(
    gateway: RunningGateway, request_bytes: bytes, status: int, code: str | None
) -> None:
    response = await raw_request(gateway.port, request_bytes)
    assert response.status == status
    assert response.version == "HTTP/1.1"
    assert response.headers["content-type"] == "application/json"
    assert "x-request-id" in response.headers
    error = response.json()["error"]
    assert error["type"] in CONTRACT_TYPES
    if code is not None:
        assert error["code"] == code
    assert b"aaaa" not in response.body


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/shelves/plain", "/healthz", "/v2/nothing"])
async def test_unmet_expectation_is_a_417_envelope_without_echo(
    gateway: RunningGateway, path: str
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: t\r\nExpect: 999-foo\r\n\r\n".encode()
    response = await raw_request(gateway.port, request)
    assert response.status == 417
    assert response.headers["content-type"] == "application/json"
    assert "x-request-id" in response.headers
    error = _assert_envelope(response.json(), 417, "expectation_failed")
    assert error["type"] == "ExpectationFailedError"
    assert b"999-foo" not in response.body


@pytest.mark.asyncio
async def test_expect_100_continue_still_sends_the_body(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{gateway.base_url}/v1/shelves", json={"id": "s2", "theme": "maps"}, expect100=True
    ) as response:
        assert response.status == 200
        assert (await response.json())["id"] == "s2"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "request_line",
    [
        b"CONNECT example.com:443 HTTP/1.1",
        b"CONNECT /v1/shelves/a HTTP/1.1",
        b"PROPFIND / HTTP/1.1",
    ],
)
async def test_a_method_no_route_serves_is_a_501_with_a_code(
    gateway: RunningGateway, request_line: bytes
) -> None:
    response = await raw_request(gateway.port, request_line + b"\r\nHost: t\r\n\r\n")
    assert response.status == 501
    error = _assert_envelope(response.json(), 501, "method_not_implemented")
    assert error["type"] == "NotImplementedError"


@pytest.mark.asyncio
async def test_health_readiness_and_backend_down(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    async with running_gateway(_config(probe)) as gateway:
        async with http.get(f"{gateway.base_url}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
        async with http.get(f"{gateway.base_url}/readyz") as response:
            assert response.status == 200
        await probe.server.stop(grace=None)
        async with http.get(f"{gateway.base_url}/readyz") as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            _assert_envelope(await response.json(), 503, "backend_unavailable")
        async with http.get(f"{gateway.base_url}/v1/shelves/plain") as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            error = _assert_envelope(await response.json(), 503, "backend_unavailable")
            assert "127.0.0.1" not in error["message"]
        async with http.get(f"{gateway.base_url}/healthz") as response:
            assert response.status == 200  # liveness never depends on the backend


@pytest.mark.asyncio
async def test_metrics_move_with_the_right_labels(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    for path in ("plain", "plain", "status-NOT_FOUND"):
        async with http.get(f"{gateway.base_url}/v1/shelves/{path}") as response:
            await response.read()
    async with http.get(f"{gateway.base_url}/nowhere") as response:
        await response.read()
    async with http.get(f"{gateway.base_url}/healthz") as response:
        await response.read()
    async with http.get(f"{gateway.base_url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    route = f'route="{SHELF_ROUTE}"'
    assert f'http_requests_total{{code="200",method="GET",{route}}} 2.0' in text
    assert f'http_requests_total{{code="404",method="GET",{route}}} 1.0' in text
    assert 'http_requests_total{code="404",method="GET",route="unmatched"} 1.0' in text
    # The upstream calls as grpc-ecosystem's client metrics name them (Go's code names).
    method = (
        'grpc_method="GetShelf",grpc_service="execgate.testing.v1.LibraryService",grpc_type="unary"'
    )
    assert f'grpc_client_handled_total{{grpc_code="NotFound",{method}}} 1.0' in text
    assert f'grpc_client_handled_total{{grpc_code="OK",{method}}} 2.0' in text
    assert f"grpc_client_handling_seconds_count{{{method}}} 3.0" in text
    assert 'http_requests_total{code="200",method="GET",route="/healthz"} 1.0' in text
    assert "http_requests_in_flight 1.0" in text  # the /metrics request itself
    assert f'http_request_duration_seconds_bucket{{le="+Inf",method="GET",{route}}} 3.0' in text
    # Process metrics come with every scrape.
    assert "process_resident_memory_bytes " in text
    assert "process_open_fds " in text
    assert "process_cpu_seconds_total " in text


@pytest.mark.asyncio
async def test_one_json_access_line_per_request_without_the_key(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    stream = io.BytesIO()
    async with running_gateway(_config(probe), AccessLog(stream)) as gateway:
        headers = {"Authorization": "Bearer very-secret-key", "X-Request-Id": "log-1"}
        url = f"{gateway.base_url}/v1/shelves/status-NOT_FOUND"
        async with http.get(url, headers=headers) as response:
            await response.read()
        await raw_request(gateway.port, b"\x16\x03garbage\r\n\r\n")
        await asyncio.sleep(0.05)  # lines are flushed once per event-loop iteration
        logged = stream.getvalue()
    first, second = (orjson.loads(line) for line in logged.splitlines())
    assert first["request_id"] == "log-1"
    assert (first["level"], first["logger"], first["msg"]) == (
        "info",
        "execgate.gateway.access",
        "request",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first["route"] == SHELF_ROUTE
    assert first["method"] == "GET"
    assert first["path"] == "/v1/shelves/status-NOT_FOUND"
    assert first["status"] == 404
    assert first["grpc_code"] == "NOT_FOUND"
    assert first["duration_ms"] > 0
    assert (second["status"], second["route"]) == (400, "unmatched")  # refused by the parser
    assert b"very-secret-key" not in logged


@pytest.mark.asyncio
async def test_graceful_shutdown_finishes_in_flight_requests(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    config = _config(probe, shutdown_timeout_s=5.0)
    app = build_app(config)
    runner, port = await start_site(app, config)
    # A slow-ish request: the probe's sleep is cut by the client's 0.5 s deadline.
    slow = asyncio.ensure_future(
        http.get(f"http://127.0.0.1:{port}/v1/shelves/sleep", headers={"X-Request-Timeout": "0.5"})
    )
    await asyncio.wait_for(probe.servicer.started.wait(), 5)
    await runner.cleanup()  # what SIGTERM does
    response = await slow
    assert response.status == 504  # answered, not dropped
    response.release()
    with pytest.raises(aiohttp.ClientConnectionError):
        await http.get(f"http://127.0.0.1:{port}/healthz")


@pytest.mark.asyncio
async def test_head_is_served_by_the_get_route_without_a_body(
    gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.head(f"{gateway.base_url}/v1/shelves/plain") as response:
        assert response.status == 200
        assert await response.read() == b""
        assert "X-Request-Id" in response.headers


@pytest.mark.asyncio
async def test_several_backends_share_the_load_and_a_stopped_one_fails_nothing(
    http: aiohttp.ClientSession,
) -> None:
    async with probe_backend() as first, probe_backend() as second:
        backends = f"{first.address},{second.address}"
        async with running_gateway(_config(first, backend=backends)) as gateway:
            url = f"{gateway.base_url}/v1/shelves/plain"
            for _ in range(20):
                async with http.get(url) as response:
                    assert response.status == 200
            assert first.servicer.calls > 0
            assert second.servicer.calls > 0  # round_robin, not pick_first
            await second.server.stop(grace=None)
            statuses = []
            for _ in range(20):
                async with http.get(url) as response:
                    statuses.append(response.status)
            assert statuses == [200] * 20  # UNAVAILABLE retried on the other backend


def test_start_up_fails_naming_an_unknown_service() -> None:
    with pytest.raises(ServiceNotFoundError, match=r"execgate\.nowhere\.v1\.Nothing"):
        build_app(GatewayConfig(services=("execgate.nowhere.v1.Nothing",)))


def test_start_up_fails_naming_the_method_of_a_bad_rule() -> None:
    config = GatewayConfig(services=("execgate.testing.v1.BrokenLibraryService",))
    with pytest.raises(RouteConfigError, match=r"BrokenLibraryService\.GetPamphlet"):
        build_app(config)


@pytest.mark.asyncio
async def test_answer_over_a_message_size_limit_is_a_502_not_a_429(
    probe: ProbeBackend, http: aiohttp.ClientSession
) -> None:
    # The gateway's own receive limit.
    async with running_gateway(_config(probe, max_message_bytes=1000)) as gateway:
        async with http.get(f"{gateway.base_url}/v1/shelves/big") as response:
            assert response.status == 502
            error = _assert_envelope(await response.json(), 502, "response_too_large")
            assert error["type"] == "BadGatewayError"
            assert "Retry-After" not in response.headers
        async with http.get(f"{gateway.base_url}/v1/shelves/status-RESOURCE_EXHAUSTED") as response:
            assert response.status == 429  # the service's own RESOURCE_EXHAUSTED is a 429


@pytest.mark.asyncio
async def test_answer_over_the_services_send_limit_is_a_502_not_a_429(
    http: aiohttp.ClientSession,
) -> None:
    # As a 9 MB execution with include_legacy_results=true against the service's 16 MiB.
    async with (
        probe_backend(max_send_bytes=1000) as small_sender,
        running_gateway(_config(small_sender)) as gateway,
        http.get(f"{gateway.base_url}/v1/shelves/big") as response,
    ):
        assert response.status == 502
        _assert_envelope(await response.json(), 502, "response_too_large")
