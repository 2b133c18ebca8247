"""REST through the in-process channel answers exactly as REST through real gRPC.

Two gateways in front of one real service (SQLite, demo data): one over a
grpc.aio channel (the two-process deployment), one over the in-process
channel. Every request goes to both; status, body bytes and the headers that
carry meaning must be identical, and each case is also checked on its own terms.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import orjson
import pytest
import pytest_asyncio

from gateway.access_log import AccessLog
from gateway.app import ChannelFactory, build_app, start_site
from gateway.config import GatewayConfig
from gateway.upstream import open_channel
from service import admin
from singleprocess.channel import InProcessChannel
from singleprocess.handlers import service_handlers
from tests.running_service import RunningService

COMPARED_HEADERS = ("Content-Type", "Content-Encoding", "ETag", "Cache-Control", "Vary")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class Gateways:
    over_grpc: str  # base URLs
    in_process: str
    service: RunningService

    async def both(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Answer:
        """The answer of both gateways to one request, after checking they are the same."""
        over_grpc = await fetch(self.over_grpc, method, path, headers, **kwargs)
        in_process = await fetch(self.in_process, method, path, headers, **kwargs)
        assert over_grpc == in_process
        return in_process

    def auth(self, key: str | None = None) -> dict[str, str]:
        demo = self.service.demo
        return {
            "Authorization": f"Bearer {key or demo.api_key}",
            "X-Namespace": demo.namespace.name,
        }

    def execution(self, key: str) -> str:
        demo = self.service.demo
        return f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions[key]}"


async def fetch(
    base: str, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> Answer:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.request(method, base + path, headers=headers, **kwargs) as got,
    ):
        kept = {name: got.headers[name] for name in COMPARED_HEADERS if name in got.headers}
        return Answer(got.status, kept, await got.read())


@asynccontextmanager
async def _gateway(config: GatewayConfig, factory: ChannelFactory) -> AsyncIterator[str]:
    app = build_app(config, access_log=AccessLog(None), channel_factory=factory)
    runner, port = await start_site(app, config)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def gateways(running_service: RunningService) -> AsyncIterator[Gateways]:
    config = GatewayConfig(port=0, backend=running_service.address, shutdown_timeout_s=2.0)
    handlers = service_handlers(running_service.server)
    async with (
        _gateway(config, open_channel) as over_grpc,
        _gateway(config, lambda _: InProcessChannel(handlers)) as in_process,
    ):
        yield Gateways(over_grpc, in_process, running_service)


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["completed_10", "completed_1000", "processing"])
async def test_get_gives_the_same_bytes_and_headers(gateways: Gateways, key: str) -> None:
    answer = await gateways.both("GET", gateways.execution(key), gateways.auth())
    assert answer.status == 200
    assert answer.json()["execution_id"] == gateways.service.demo.executions[key]
    assert answer.headers["Cache-Control"] == ("no-store" if key == "processing" else "private")
    assert answer.headers["ETag"].startswith('"')


@pytest.mark.asyncio
async def test_if_none_match_answers_304(gateways: Gateways) -> None:
    path = gateways.execution("completed_10")
    etag = (await gateways.both("GET", path, gateways.auth())).headers["ETag"]
    answer = await gateways.both("GET", path, {**gateways.auth(), "If-None-Match": etag})
    assert answer.status == 304
    assert answer.body == b""
    assert answer.headers["ETag"] == etag


@pytest.mark.asyncio
async def test_an_unknown_execution_is_404_with_the_error_details(gateways: Gateways) -> None:
    retriever = gateways.service.demo.retriever.id
    path = f"/v1/retrievers/{retriever}/executions/exec_doesnotexist"
    answer = await gateways.both("GET", path, gateways.auth())
    assert answer.status == 404
    error = answer.json()["error"]
    assert error["code"] == "execution_not_found"  # from grpc-status-details-bin
    assert error["details"] == {"resource": "execution", "id": "exec_doesnotexist"}


@pytest.mark.asyncio
async def test_a_wrong_key_is_401_and_a_key_without_read_is_403(gateways: Gateways) -> None:
    path = gateways.execution("completed_10")
    wrong = await gateways.both("GET", path, gateways.auth("not-a-key"))
    assert wrong.status == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    demo = gateways.service.demo
    issued = await admin.create_api_key(gateways.service.store, [demo.namespace.id], ["write"])
    denied = await gateways.both("GET", path, gateways.auth(issued.secret))
    assert denied.status == 403
    assert denied.json()["error"]["details"] == {"permission": "read"}


@pytest.mark.asyncio
async def test_a_foreign_namespace_is_404(gateways: Gateways) -> None:
    headers = {**gateways.auth(), "X-Namespace": "no-such-namespace"}
    answer = await gateways.both("GET", gateways.execution("completed_10"), headers)
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "namespace_not_found"


@pytest.mark.asyncio
async def test_an_invalid_argument_is_400(gateways: Gateways) -> None:
    retriever = gateways.service.demo.retriever.id
    path = f"/v1/retrievers/{retriever}/executions/not-an-id"
    answer = await gateways.both("GET", path, gateways.auth())
    assert answer.status == 400
    assert answer.json()["error"]["details"] == {"field": "execution_id"}


@pytest.mark.asyncio
async def test_the_list_route_with_query_parameters(gateways: Gateways) -> None:
    path = f"/v1/retrievers/{gateways.service.demo.retriever.name}/executions/list"
    params = {"limit": "2", "offset": "1", "include_total": "true"}
    answer = await gateways.both(
        "POST", path, gateways.auth(), params=params, json={"status": "completed"}
    )
    assert answer.status == 200
    page = answer.json()
    assert page["pagination"]["total"] == 2  # the demo's two completed executions
    assert page["pagination"]["limit"] == 2
    assert [summary["status"] for summary in page["results"]] == ["completed"]


class _SlowHandlers(grpc.GenericRpcHandler):
    """The real service's handlers, each answering `delay_s` late (a service under load)."""

    def __init__(self, handlers: tuple[grpc.GenericRpcHandler, ...], delay_s: float) -> None:
        self._handlers = handlers
        self._delay_s = delay_s

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        for generic in self._handlers:
            handler = generic.service(details)
            if handler is not None and handler.unary_unary is not None:
                return grpc.unary_unary_rpc_method_handler(
                    self._late(handler.unary_unary),
                    handler.request_deserializer,
                    handler.response_serializer,
                )
            if handler is not None:
                return handler
        return None

    def _late(self, call: Any) -> Any:
        async def late(request: Any, context: Any) -> Any:
            await asyncio.sleep(self._delay_s)
            return await call(request, context)

        return late


@pytest.mark.asyncio
async def test_an_expired_deadline_is_504(running_service: RunningService) -> None:
    # X-Request-Timeout's minimum (0.05 s) against a service that answers 0.3 s late.
    config = GatewayConfig(port=0, backend=running_service.address, shutdown_timeout_s=2.0)
    slow = (_SlowHandlers(service_handlers(running_service.server), 0.3),)
    async with _gateway(config, lambda _: InProcessChannel(slow)) as in_process:
        gateways = Gateways(in_process, in_process, running_service)
        headers = {**gateways.auth(), "X-Request-Timeout": "0.05"}
        answer = await fetch(in_process, "GET", gateways.execution("completed_10"), headers)
    assert answer.status == 504
    assert answer.json()["error"]["code"] == "deadline_exceeded"


@pytest.mark.asyncio
async def test_readyz_follows_the_service_health(gateways: Gateways) -> None:
    assert (await gateways.both("GET", "/readyz")).status == 200
    await gateways.service.server.health.enter_graceful_shutdown()  # NOT_SERVING everywhere
    assert (await gateways.both("GET", "/readyz")).status == 503


@pytest.mark.asyncio
async def test_the_viewer_is_served_in_one_process_too(gateways: Gateways) -> None:
    for path in ("/ui/", "/ui/main.js", "/ui/style.css"):
        answer = await gateways.both("GET", path)
        assert answer.status == 200, path
        assert answer.headers["ETag"].startswith('"')
