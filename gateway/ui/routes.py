"""aiohttp routes serving the viewer under `/ui/`, with strict security headers.

`/ui/` is the page, `/ui/<file>` its CSS and modules, one route per shipped
file: any other path under `/ui/` falls through to the gateway's catch-all
and answers the usual 404 envelope. Every answer carries a Content-Security-
Policy that allows scripts, styles and requests from the gateway's own origin
only (no inline script or style, no other host), so that even a value the page
mishandled could not load or run code from elsewhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from gateway.dispatch import etag_matches
from gateway.ui.assets import Asset, load_assets

UI_PREFIX: Final = "/ui"

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The page's URL holds retriever and execution IDs: keep them to this origin.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Revalidate on every load (the ETag makes that a 304): module files import
# each other by plain name, so they cannot carry a content hash in their URL.
CACHE_CONTROL: Final = "no-cache"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ui_routes() -> list[web.RouteDef]:
    """The viewer's routes; its files are read here, once."""
    files = load_assets()
    routes = [
        web.get(UI_PREFIX, _redirect_to_page, allow_head=True),
        web.get(f"{UI_PREFIX}/", _serve(files["index.html"]), allow_head=True),
    ]
    routes += [
        web.get(f"{UI_PREFIX}/{name}", _serve(asset), allow_head=True)
        for name, asset in files.items()
        if name != "index.html"
    ]
    return routes


async def _redirect_to_page(_: web.Request) -> web.StreamResponse:
    return web.Response(status=308, headers={**SECURITY_HEADERS, "Location": f"{UI_PREFIX}/"})


def _serve(asset: Asset) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": CACHE_CONTROL}
        if etag_matches(request.headers.get("If-None-Match"), asset.etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = asset.content_type
        return web.Response(body=asset.body, headers=headers)

    return handler
