"""The OpenAPI 3.1 document of the REST routes, generated from the protos; and the docs page.

`build_openapi(services, ...)` / `build_openapi_for_routes(table.routes, ...)` build the
document; `routes.openapi_routes()` is the `docs_routes` hook of `gateway.app.build_app`
that serves it at `/openapi.json` with Swagger UI at `/docs`.
"""

from gateway.openapi.document import build_openapi, build_openapi_for_routes

__all__ = ["build_openapi", "build_openapi_for_routes"]
