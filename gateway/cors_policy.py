"""The CORS policy of the gateway's settings: which origins, credentials, preflight cache.

Kept apart from `gateway.cors` (the middleware) so that `gateway.config` can check the
settings at start-up without importing the request path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

ANY_ORIGIN: Final = "*"


class CorsConfigError(ValueError):
    """An allow-list the gateway cannot apply; raised at start-up."""


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str]  # normalised `scheme://host[:port]`, or {"*"}
    allow_credentials: bool
    max_age_s: int

    @classmethod
    def from_settings(
        cls, origins: Iterable[str], allow_credentials: bool, max_age_s: int
    ) -> CorsPolicy | None:
        """The policy, or None when no origin is allowed (CORS off). `max_age_s` is
        checked even then, so a bad value stops start-up before CORS is turned on."""
        if max_age_s < 0:
            raise CorsConfigError("CORS: max age must be 0 or more seconds")
        normalised = frozenset(normalise_origin(origin) for origin in origins)
        if not normalised:
            return None
        if ANY_ORIGIN in normalised and allow_credentials:
            raise CorsConfigError(
                "CORS: '*' cannot allow credentials (Fetch forbids it); list the origins"
            )
        if ANY_ORIGIN in normalised and len(normalised) > 1:
            raise CorsConfigError("CORS: '*' allows every origin; list no others with it")
        return cls(normalised, allow_credentials, max_age_s)

    def allowed_origin(self, origin: str | None) -> str | None:
        """The `Access-Control-Allow-Origin` value for `origin`, None if not allowed."""
        if origin is None:
            return None
        if ANY_ORIGIN in self.origins:
            return ANY_ORIGIN
        return origin if origin.lower() in self.origins else None


def normalise_origin(origin: str) -> str:
    """`https://App.example:8443` → `https://app.example:8443`; refuses paths and junk."""
    origin = origin.strip()
    if origin == ANY_ORIGIN:
        return origin
    parts = urlsplit(origin)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise CorsConfigError(
            f"CORS origin {origin!r} must be scheme://host[:port] (no path, no trailing /) or *"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()
