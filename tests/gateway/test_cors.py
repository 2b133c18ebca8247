"""CORS on the gateway: off by default, allow-list, preflight from the route table,
credentials rules, nothing for an origin that is not allowed.

The real gateway in front of the real service (demo data), on 127.0.0.1 port 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway.config import ConfigError, GatewayConfig
from gateway.cors import ALLOWED_HEADERS
from tests.support.gateway_harness import running_gateway
from tests.support.running_service import RunningService

APP = "https://app.example"
OTHER = "https://evil.example"

Call = Callable[..., Coroutine[Any, Any, aiohttp.ClientResponse]]


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as client:
        yield client


def _execution_path(service: RunningService) -> str:
    demo = service.demo
    return f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['completed_10']}"


async def _call(
    session: aiohttp.ClientSession,
    service: RunningService,
    method: str,
    path: str,
    *,
    config: dict[str, Any],
    headers: dict[str, str],
) -> tuple[int, Any, bytes]:
    gateway_config = GatewayConfig(
        port=0, backend=service.address, shutdown_timeout_s=1.0, **config
    )
    async with (
        running_gateway(gateway_config) as gateway,
        session.request(method, gateway.base_url + path, headers=headers) as response,
    ):
        return response.status, response.headers, await response.read()


def _auth(service: RunningService) -> dict[str, str]:
    demo = service.demo
    return {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}


def _preflight(origin: str, method: str = "GET") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, x-namespace",
    }


@pytest.mark.asyncio
async def test_cors_is_off_by_default(
    running_service: RunningService, session: aiohttp.ClientSession
) -> None:
    path = _execution_path(running_service)
    status, headers, _ = await _call(
        session,
        running_service,
        "GET",
        path,
        config={},
        headers={**_auth(running_service), "Origin": APP},
    )
    assert status == 200
    assert not any(name.lower().startswith("access-control-") for name in headers)
    status, headers, body = await _call(
        session, running_service, "OPTIONS", path, config={}, headers=_preflight(APP)
    )
    assert status == 405  # an ordinary OPTIONS request: the envelope, with Allow
    assert b'"success":false' in body
    assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.asyncio
async def test_an_allowed_origin_reads_answers_and_errors(
    running_service: RunningService, session: aiohttp.ClientSession
) -> None:
    config = {"cors_allow_origins": (APP, "http://localhost:3000")}
    path = _execution_path(running_service)
    headers = {**_auth(running_service), "Origin": APP}
    status, answer, _ = await _call(
        session, running_service, "GET", path, config=config, headers=headers
    )
    assert status == 200
    assert answer["Access-Control-Allow-Origin"] == APP
    assert "Access-Control-Allow-Credentials" not in answer
    exposed = {name.strip() for name in answer["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "X-Request-Id", "Retry-After", "RateLimit"} <= exposed
    assert "Origin" in answer["Vary"]
    # An error answer is readable too (else a browser sees only a network error).
    status, answer, _ = await _call(
        session, running_service, "GET", path, config=config, headers={"Origin": APP}
    )
    assert status == 401
    assert answer["Access-Control-Allow-Origin"] == APP


@pytest.mark.asyncio
async def test_preflight_lists_the_route_table_methods_and_the_headers_read(
    running_service: RunningService, session: aiohttp.ClientSession
) -> None:
    config = {"cors_allow_origins": (APP,), "cors_max_age_s": 120}
    path = _execution_path(running_service)
    status, answer, body = await _call(
        session, running_service, "OPTIONS", path, config=config, headers=_preflight(APP)
    )
    assert (status, body) == (204, b"")
    assert answer["Access-Control-Allow-Origin"] == APP
    assert answer["Access-Control-Allow-Methods"] == "GET, HEAD"
    allowed = {name.strip().lower() for name in answer["Access-Control-Allow-Headers"].split(",")}
    assert {h.lower() for h in ALLOWED_HEADERS} == allowed
    assert {"authorization", "x-namespace", "content-type", "x-request-timeout"} <= allowed
    assert {"x-request-id", "last-event-id"} <= allowed
    assert answer["Access-Control-Max-Age"] == "120"
    assert answer["Vary"] == "Origin"
    assert "X-Request-Id" in answer  # answered by the gateway's middleware, logged like any
    # The listing is a POST route.
    listing = f"/v1/retrievers/{running_service.demo.retriever.id}/executions/list"
    status, answer, _ = await _call(
        session, running_service, "OPTIONS", listing, config=config, headers=_preflight(APP, "POST")
    )
    assert status == 204
    assert answer["Access-Control-Allow-Methods"] == "POST"
    # A path no route matches: the usual 404 envelope, so the preflight fails.
    status, answer, body = await _call(
        session, running_service, "OPTIONS", "/v1/nothing", config=config, headers=_preflight(APP)
    )
    assert status == 404
    assert b"route_not_found" in body


@pytest.mark.asyncio
async def test_an_origin_not_allowed_gets_no_cors_header(
    running_service: RunningService, session: aiohttp.ClientSession
) -> None:
    config = {"cors_allow_origins": (APP,), "cors_allow_credentials": True}
    path = _execution_path(running_service)
    headers = {**_auth(running_service), "Origin": OTHER}
    status, answer, _ = await _call(
        session, running_service, "GET", path, config=config, headers=headers
    )
    assert status == 200
    assert not any(name.lower().startswith("access-control-") for name in answer)
    # A cache must not hand APP's answer to OTHER; gzip's Vary stays.
    assert answer["Vary"] == "Accept-Encoding, Origin"
    status, answer, _ = await _call(
        session, running_service, "OPTIONS", path, config=config, headers=_preflight(OTHER)
    )
    assert status == 405
    assert not any(name.lower().startswith("access-control-") for name in answer)


@pytest.mark.asyncio
async def test_credentials_echo_the_origin_never_a_wildcard(
    running_service: RunningService, session: aiohttp.ClientSession
) -> None:
    config = {"cors_allow_origins": ("https://App.Example",), "cors_allow_credentials": True}
    path = _execution_path(running_service)
    for method, headers in (
        ("GET", {**_auth(running_service), "Origin": APP}),
        ("OPTIONS", _preflight(APP)),
    ):
        status, answer, _ = await _call(
            session, running_service, method, path, config=config, headers=headers
        )
        assert status in (200, 204)
        assert answer["Access-Control-Allow-Origin"] == APP
        assert answer["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.asyncio
async def test_any_origin_without_credentials(
    running_service: RunningService, session: aiohttp.ClientSession
) -> None:
    path = _execution_path(running_service)
    headers = {**_auth(running_service), "Origin": OTHER}
    status, answer, _ = await _call(
        session,
        running_service,
        "GET",
        path,
        config={"cors_allow_origins": ("*",)},
        headers=headers,
    )
    assert status == 200
    assert answer["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in answer


@pytest.mark.parametrize(
    ("origins", "credentials", "message"),
    [
        (("*",), True, "'*' cannot allow credentials"),
        (("*", APP), False, "list no others"),
        ((APP + "/",), False, "no path"),
        (("app.example",), False, "scheme://host"),
        (("ftp://app.example",), False, "scheme://host"),
        (("https://user@app.example",), False, "scheme://host"),
    ],
)
def test_unusable_allow_lists_stop_start_up(
    origins: tuple[str, ...], credentials: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig(cors_allow_origins=origins, cors_allow_credentials=credentials)


def test_a_negative_max_age_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="max age"):
        GatewayConfig(cors_allow_origins=(APP,), cors_max_age_s=-1)


def test_a_negative_max_age_stops_start_up_with_cors_off() -> None:
    with pytest.raises(ConfigError, match="max age"):
        GatewayConfig(cors_max_age_s=-5)
