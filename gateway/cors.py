"""CORS: browsers on other origins may call the gateway when their origin is allowed.

Off by default (`--cors-allow-origins` empty). When on:
- every response to a request whose `Origin` is allowed (errors, 304s and streams too)
  carries `Access-Control-Allow-Origin`, `Access-Control-Expose-Headers` and, with
  credentials, `Access-Control-Allow-Credentials: true`; added when the response is
  prepared (`on_response_prepare`), so envelopes built by the middleware get them too;
- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an
  allowed origin is answered 204 with the methods the route table has for the path,
  the request headers the gateway reads, and `Access-Control-Max-Age`. The browser
  compares them with what it asked for (Fetch, "CORS-preflight fetch"); a path no route
  matches is the usual 404 envelope (with CORS headers), so the preflight fails;
- an origin that is not allowed gets no CORS header at all, and its preflight is an
  ordinary `OPTIONS` request (405 envelope with `Allow`), exactly as with CORS off:
  Fetch fails the preflight on the missing `Access-Control-Allow-Origin` either way,
  and the gateway reveals nothing about its policy.

Credentials rules (Fetch, "CORS check"): with credentials the allowed origin is echoed,
never `*`, and `*` in the allow-list is refused at start-up; whenever the answer depends
on the origin, `Vary: Origin` says so to caches.

Why not aiohttp-cors: it configures CORS per aiohttp route and adds its own OPTIONS
handlers, which the gateway's one catch-all `*` route cannot take (aio-libs/aiohttp-cors
issue 241: "already has a '*' handler for all methods"); its preflight knows only methods
configured by hand, not the route table's; and its refusals are not the envelope.
"""

from __future__ import annotations

from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from gateway.cors_policy import ANY_ORIGIN, CorsPolicy
from gateway.middleware import REQUEST_RECORD
from gateway.routing import MethodNotAllowedError, RouteTable

# What a browser may send beyond the CORS-safelisted headers (Authorization is never
# covered by a wildcard, so every name is listed).
ALLOWED_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "If-None-Match",
    "Last-Event-ID",
    "Traceparent",
    "X-Namespace",
    "X-Request-Id",
    "X-Request-Timeout",
)
# What a browser's script may read beyond the CORS-safelisted response headers.
EXPOSED_HEADERS: Final = (
    "ETag",
    "Retry-After",
    "X-Request-Id",
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
_EXPOSED_HEADERS_VALUE: Final = ", ".join(EXPOSED_HEADERS)
# The request record's route label of preflights: a fixed label, never a raw path.
PREFLIGHT_ROUTE: Final = "cors_preflight"


def add_cors(app: web.Application, policy: CorsPolicy) -> None:
    """CORS headers on every response `app` prepares (see the module doc)."""

    async def add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
        _vary_origin(response, policy)
        allowed = policy.allowed_origin(request.headers.get(hdrs.ORIGIN))
        if allowed is None:
            return
        headers = response.headers
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
        if policy.allow_credentials:
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        if not _is_preflight(request):
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSED_HEADERS_VALUE

    app.on_response_prepare.append(add_headers)


def preflight_middleware(policy: CorsPolicy, routes: RouteTable) -> Middleware:
    """Answers preflights of allowed origins; inside the main middleware, so they are
    logged and counted like any request, and a 404 is the usual envelope."""
    allowed_headers = ", ".join(ALLOWED_HEADERS)
    max_age = str(policy.max_age_s)

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            not _is_preflight(request)
            or policy.allowed_origin(request.headers[hdrs.ORIGIN]) is None
        ):
            return await handler(request)
        try:
            routes.lookup(hdrs.METH_OPTIONS, request.raw_path)
        except MethodNotAllowedError as error:  # the expected outcome: no route is OPTIONS
            methods = error.allowed_methods
        else:
            methods = (hdrs.METH_OPTIONS,)
        # Labelled once the path is known to be a route's (a 404 keeps "unmatched").
        request[REQUEST_RECORD].route = PREFLIGHT_ROUTE
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: ", ".join(methods),
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: allowed_headers,
                hdrs.ACCESS_CONTROL_MAX_AGE: max_age,
            },
        )

    return preflight


def _is_preflight(request: web.BaseRequest) -> bool:
    headers = request.headers
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in headers
    )


def _vary_origin(response: web.StreamResponse, policy: CorsPolicy) -> None:
    # `*` without credentials is the same answer for every origin: nothing varies.
    if ANY_ORIGIN in policy.origins:
        return
    vary = response.headers.get(hdrs.VARY)
    if vary is None:
        response.headers[hdrs.VARY] = hdrs.ORIGIN
    elif hdrs.ORIGIN.lower() not in (part.strip().lower() for part in vary.split(",")):
        response.headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}"
