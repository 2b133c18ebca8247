"""`--admin-listen`: metrics and the API description on a second listener, not the public one."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.app import start_admin_site
from gateway.config import ConfigError, GatewayConfig
from gateway.openapi.routes import openapi_routes
from tests.support.gateway_harness import running_gateway


@pytest.mark.asyncio
async def test_metrics_and_docs_move_to_the_admin_listener() -> None:
    config = GatewayConfig(port=0, backend="127.0.0.1:9", admin_listen="127.0.0.1:0")
    docs = openapi_routes()
    async with running_gateway(config, with_docs=True) as gateway:
        port = gateway.port
        admin = await start_admin_site(gateway.app, config, docs)
        assert admin is not None
        admin_runner, host, admin_port = admin
        try:
            async with aiohttp.ClientSession() as http:
                for path in ("/metrics", "/openapi.json", "/docs"):
                    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                        assert response.status == 404, path
                        assert (await response.json())["error"]["code"] == "route_not_found"
                    async with http.get(f"http://{host}:{admin_port}{path}") as response:
                        assert response.status == 200, path
                async with http.get(f"http://{host}:{admin_port}/metrics") as response:
                    text = await response.text()
                # The public listener's requests, the 404s above included.
                assert 'http_requests_total{code="404",method="GET",route="unmatched"} 3.0' in text
        finally:
            await admin_runner.cleanup()


@pytest.mark.asyncio
async def test_without_an_admin_listener_everything_stays_on_the_main_one() -> None:
    config = GatewayConfig(port=0, backend="127.0.0.1:9")
    async with running_gateway(config) as gateway:
        assert await start_admin_site(gateway.app, config, None) is None
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gateway.base_url}/metrics") as r,
        ):
            assert r.status == 200


def test_an_admin_address_that_is_not_host_port_stops_start_up() -> None:
    with pytest.raises(ConfigError, match="host:port"):
        GatewayConfig(admin_listen="9465")
