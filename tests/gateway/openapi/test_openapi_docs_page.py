"""The docs page, its Swagger UI assets and the document, served by the real gateway app."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from gateway.app import build_app
from gateway.config import GatewayConfig
from gateway.openapi.docs_page import ASSET_NAMES, swagger_ui_page
from gateway.openapi.routes import openapi_routes


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
async def test_gateway_serves_document_page_and_assets() -> None:
    """The real gateway app with the `openapi_routes()` hook, on a real socket."""
    app = build_app(GatewayConfig(port=0), docs_routes=openapi_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout) as session:
            async with session.get("/openapi.json") as response:
                assert response.status == 200
                assert response.content_type == "application/json"
                document = await response.json()
            validate(document)
            assert set(document["paths"]) == {
                "/v1/retrievers/{retriever_id}/executions/{execution_id}",
                "/v1/retrievers/{retriever_id}/executions/list",
                "/v1/retrievers/{retriever_id}/executions/{execution_id}:watch",
            }
            # Descriptions prove the packaged descriptor set was found.
            assert (
                document["paths"]["/v1/retrievers/{retriever_id}/executions/{execution_id}"]["get"][
                    "description"
                ]
                == "Get execution details and statistics."
            )

            async with session.get("/docs") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                html = await response.text()
            page = swagger_ui_page(title="t")
            for name, path in page.assets.items():
                url = f"/docs/assets/{name}"
                assert f'"{url}"' in html
                async with session.get(url) as response:
                    assert response.status == 200
                    assert await response.read() == path.read_bytes()
            # Only the page's own files are served from the package.
            async with session.get("/docs/assets/swagger-editor.js") as response:
                assert response.status == 404
                assert (await response.json())["error"]["code"] == "route_not_found"
    finally:
        await runner.cleanup()
