"""The docs page and its Swagger UI assets, served by a real aiohttp app over a socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.openapi.docs_page import ASSET_NAMES, swagger_ui_page


def test_page_loads_only_local_assets() -> None:
    page = swagger_ui_page(title="execgate <API>", openapi_url="/openapi.json")
    assert "<title>execgate &lt;API&gt;</title>" in page.html
    assert 'url: "/openapi.json"' in page.html
    assert "http://" not in page.html
    assert "https://" not in page.html
    for name in ("swagger-ui.css", "swagger-ui-bundle.js"):
        assert f'"/docs/assets/{name}"' in page.html
    assert set(page.assets) == set(ASSET_NAMES)


def test_bundle_renders_openapi_3_1() -> None:
    # Swagger UI 4 refuses 3.1 documents; 5.x carries an OpenAPI 3.1 plugin.
    bundle = swagger_ui_page(title="t").assets["swagger-ui-bundle.js"].read_bytes()
    assert b"OpenAPI31" in bundle


def test_openapi_url_cannot_break_out_of_the_script() -> None:
    page = swagger_ui_page(title="t", openapi_url="/x</script><script>alert(1)//")
    assert "</script><script>alert" not in page.html


@pytest.mark.asyncio
async def test_served_page_and_assets(execution_document: dict[str, Any]) -> None:
    page = swagger_ui_page(title="execgate API")

    async def docs(_: web.Request) -> web.Response:
        return web.Response(text=page.html, content_type="text/html")

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(execution_document)

    def serve(path: Path) -> Any:
        async def handler(_: web.Request) -> web.FileResponse:
            return web.FileResponse(path)

        return handler

    app = web.Application()
    app.router.add_get("/docs", docs)
    app.router.add_get("/openapi.json", openapi)
    for url, path in page.asset_routes().items():
        app.router.add_get(url, serve(path))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(base, timeout=timeout) as session:
            async with session.get("/docs") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                html = await response.text()
            for url, path in page.asset_routes().items():
                assert f'"{url}"' in html
                async with session.get(url) as response:
                    assert response.status == 200
                    assert await response.read() == path.read_bytes()
            async with session.get("/docs/assets/swagger-editor.js") as response:
                assert response.status == 404
            async with session.get("/openapi.json") as response:
                assert json.loads(await response.text())["openapi"] == "3.1.0"
    finally:
        await runner.cleanup()
