"""The OpenAPI 3.1 document of the REST routes, generated from the protos; and the docs page."""

from gateway.openapi.document import build_openapi

__all__ = ["build_openapi"]
