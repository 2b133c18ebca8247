"""aiohttp routes for `/openapi.json` and `/docs`, for `gateway.app.build_app(docs_routes=...)`.

The document is built once, from the gateway's own route table, and kept as bytes;
requests only send it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Awaitable, Callable
from pathlib import Path

import execgate
import orjson
from aiohttp import web

from gateway.openapi.docs_page import swagger_ui_page
from gateway.openapi.document import build_openapi_for_routes
from gateway.routing import RouteTable

# Written by `make protos` next to the generated code (package data of `execgate`).
DESCRIPTOR_SET = Path(next(iter(execgate.__path__))) / "descriptor_set.binpb"
TITLE = "execgate REST API"
DESCRIPTION = (
    "Retriever execution records over REST, transcoded to the execgate gRPC service "
    "from the `google.api.http` rules of its protos. This document is generated from "
    "the same rules and descriptors the gateway routes with."
)


def _package_version() -> str:
    try:
        return importlib.metadata.version("execgate")
    except importlib.metadata.PackageNotFoundError:  # running from a tree, not installed
        return "0.0.0"


def openapi_routes(
    *,
    descriptor_set_path: Path | None = DESCRIPTOR_SET,
    openapi_url: str = "/openapi.json",
    docs_url: str = "/docs",
) -> Callable[[RouteTable], list[web.RouteDef]]:
    """A `docs_routes` hook: given the route table, the routes serving its document and docs.

    Fails at start-up (FileNotFoundError) when the descriptor set or the Swagger UI
    package is missing, rather than serving a page that cannot work.
    """

    def routes(table: RouteTable) -> list[web.RouteDef]:
        document = build_openapi_for_routes(
            table.routes, descriptor_set_path, TITLE, _package_version(), DESCRIPTION
        )
        body = orjson.dumps(document)
        page = swagger_ui_page(
            title=TITLE, openapi_url=openapi_url, assets_prefix=f"{docs_url}/assets"
        )

        async def openapi_json(_: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        async def docs(_: web.Request) -> web.Response:
            return web.Response(text=page.html, content_type="text/html")

        def asset(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
            async def handler(_: web.Request) -> web.StreamResponse:
                return web.FileResponse(path)

            return handler

        return [
            web.get(openapi_url, openapi_json),
            web.get(docs_url, docs),
            *(web.get(url, asset(path)) for url, path in page.asset_routes().items()),
        ]

    return routes
