"""What crosses the gRPC hop: the channel, the metadata sent, the deadline, the metadata kept.

One long-lived `grpc.aio` channel per backend target, opened and closed with
the app. Only allow-listed request headers become metadata (never a
`Grpc-Metadata-*` pass-through) and only allow-listed response metadata
becomes headers, so the gateway stays general while the service decides what
is cacheable. The checks of what a call is made from (headers given once, the
body decoded) are here too, so unary and streaming dispatchers apply the same ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Final

import grpc
from aiohttp import hdrs, web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from multidict import MultiMapping

from gateway.config import GatewayConfig
from runtime.tls import channel_credentials

# Request headers forwarded as gRPC metadata. `x-request-id` is forwarded too,
# but always the gateway's validated or generated value (see middleware).
FORWARDED_HEADERS: Final = ("authorization", "x-namespace", "traceparent")
REQUEST_ID_METADATA: Final = "x-request-id"
# The same id in HTTP: the client's (when it is safe) in, the gateway's out.
REQUEST_ID_HEADER: Final = "X-Request-Id"
# Response metadata (initial or trailing) copied to HTTP headers.
RESPONSE_METADATA_HEADERS: Final = {
    "etag": "ETag",
    "cache-control": "Cache-Control",
    "retry-after": "Retry-After",
    # The service's rate limit (draft-ietf-httpapi-ratelimit-headers-08).
    "ratelimit": "RateLimit",
    "ratelimit-policy": "RateLimit-Policy",
}
REQUEST_TIMEOUT_HEADER: Final = "X-Request-Timeout"
# X-Request-Timeout: plain ASCII decimal seconds, at most 3 decimals (no exponent, sign,
# `_` or non-ASCII digits, which float() would take), and at least this many seconds:
# a shorter deadline cannot cover even one loopback round trip under load.
_REQUEST_TIMEOUT_SYNTAX: Final = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,3})?", re.ASCII)
MIN_REQUEST_TIMEOUT_S: Final = 0.05
# Headers that decide who asks and for how long: sent twice, they are ambiguous (a proxy
# and the service may each pick a different one), so the request is refused.
SINGLE_VALUED_HEADERS: Final = ("authorization", "x-namespace", REQUEST_TIMEOUT_HEADER.lower())
# Longest header value forwarded; a bearer key or traceparent is far shorter.
MAX_FORWARDED_VALUE_LENGTH: Final = 4096

Metadata = tuple[tuple[str, str], ...]


class InvalidRequestHeaderError(ValueError):
    """A header the gateway interprets (forwarded or X-Request-Timeout) has an unusable value.

    Raised while preparing an upstream call; answered as a 400 envelope that
    names the header, never forwarded to the service.
    """

    def __init__(self, header: str, message: str) -> None:
        super().__init__(message)
        self.header = header
        self.message = message


def service_config() -> str:
    """Round-robin over every resolved address; retry UNAVAILABLE only, 5 attempts in all.

    gRPC keeps retries inside the call's deadline, so a retried call never
    outlives the client's timeout. Only backends whose `grpc.health.v1`
    status is SERVING are picked (client-side health checking: a watch stream
    per backend), so a replica that is draining before shutdown, or cannot
    reach its store, gets no new calls; calls it would have received go to
    the others instead of failing.
    """
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            # Retries stop while most calls fail (a token per failure, a tenth back per
            # success, no retry below half): an overloaded or dying backend is not
            # sent up to five times the calls.
            "retryThrottling": {"maxTokens": 20, "tokenRatio": 0.1},
            "healthCheckConfig": {"serviceName": ""},
            "methodConfig": [
                {
                    "name": [{}],
                    "retryPolicy": {
                        "maxAttempts": 5,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "0.5s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ],
        }
    )


def channel_options(config: GatewayConfig) -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.keepalive_time_ms", config.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", config.keepalive_timeout_ms),
        # Ping idle connections too, so a dead backend is noticed before a call
        # needs it. The execgate service accepts pings every 10 s even without
        # calls (service/server.py); a default gRPC server would answer pings
        # more often than every 5 min with GOAWAY (too_many_pings).
        ("grpc.keepalive_permit_without_calls", 1),
        # Without this, gRPC sends at most 2 pings between data frames, so an
        # idle channel would stop checking after two keepalive intervals.
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config()),
        # Reconnect quickly after a backend restart (the default backoff grows
        # to 120 s, during which every call fails fast with UNAVAILABLE): at most
        # 0.5 s (+20 % jitter) apart, so calls flow again within a second of a
        # backend coming back (gateway/backend_state.py).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 500),
    ]


def open_channel(config: GatewayConfig) -> grpc.aio.Channel:
    """The channel to the backend; over TLS when configured (reads the files now)."""
    options = channel_options(config)
    tls = config.backend_tls_files
    if not tls.enabled:
        return grpc.aio.insecure_channel(config.grpc_target, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(config.grpc_target, channel_credentials(tls), options=options)


async def backend_serving(channel: grpc.aio.Channel, timeout_s: float) -> bool:
    """Whether the backend's `grpc.health.v1` reports the server SERVING."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def refuse_repeated_headers(headers: MultiMapping[str]) -> None:
    """Raise InvalidRequestHeaderError when a single-valued header is given more than once."""
    for name in SINGLE_VALUED_HEADERS:
        if len(headers.getall(name, ())) > 1:
            raise InvalidRequestHeaderError(name, f"header {name} must be given at most once")


# Request Content-Encodings aiohttp decodes (br and zstd only with optional libraries,
# which this gateway does not install: its parser refuses them with a 400).
_DECODED_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity", "br", "zstd"})


async def read_body(request: web.Request) -> bytes:
    """The request body, decoded from its Content-Encoding (gzip, deflate) by aiohttp.

    aiohttp decompresses as it reads, at most `client_max_size` bytes of output (413
    beyond that, so a gzip bomb costs no more than a plain body); a body that is not in
    the coding its header names is the client's mistake, answered 400.
    """
    coding = request.headers.get(hdrs.CONTENT_ENCODING)
    if coding is not None and coding.strip().lower() not in _DECODED_CODINGS:
        # aiohttp passes an unknown coding through undecoded: refuse it, never misread it.
        raise InvalidRequestHeaderError(
            hdrs.CONTENT_ENCODING.lower(),
            "Content-Encoding must be gzip, deflate or identity (one coding)",
        )
    try:
        return await request.read()
    except web.RequestPayloadError:
        # The parser has stopped reading this connection: end the body here (aiohttp
        # would read the stored error again after the answer and log it as unhandled)
        # and close the connection once the answer is sent.
        request.content.feed_eof()
        request.protocol.close()
        coding = request.headers.get(hdrs.CONTENT_ENCODING, "")
        raise InvalidRequestHeaderError(
            hdrs.CONTENT_ENCODING.lower(),
            f"the request body cannot be decoded as Content-Encoding {coding[:40]!r}",
        ) from None


def forwarded_metadata(headers: Mapping[str, str], request_id: str) -> Metadata:
    """The metadata of an upstream call: allow-listed headers plus the request id."""
    metadata = [(REQUEST_ID_METADATA, request_id)]
    for name in FORWARDED_HEADERS:
        value = headers.get(name)
        if value is not None:
            metadata.append((name, _metadata_value(name, value)))
    return tuple(metadata)


def _metadata_value(name: str, value: str) -> str:
    # gRPC rejects non-printable or non-ASCII metadata with an exception at
    # call time; say which header was wrong instead.
    if len(value) > MAX_FORWARDED_VALUE_LENGTH or not (value.isascii() and value.isprintable()):
        raise InvalidRequestHeaderError(
            name,
            f"header {name} must be printable ASCII of at most "
            f"{MAX_FORWARDED_VALUE_LENGTH} characters",
        )
    return value


def call_timeout(raw: str | None, default_s: float, max_s: float) -> float:
    """The deadline (seconds) of an upstream call: X-Request-Timeout clamped to `max_s`.

    The header is ASCII decimal seconds (`2`, `0.25`), at least MIN_REQUEST_TIMEOUT_S.
    """
    if raw is None:
        return default_s
    text = raw.strip(" \t")
    if not _REQUEST_TIMEOUT_SYNTAX.fullmatch(text) or float(text) < MIN_REQUEST_TIMEOUT_S:
        raise InvalidRequestHeaderError(
            REQUEST_TIMEOUT_HEADER.lower(),
            f"{REQUEST_TIMEOUT_HEADER} must be decimal seconds such as 2 or 0.25 "
            f"(at least {MIN_REQUEST_TIMEOUT_S:g}, at most 3 decimals)",
        )
    return min(float(text), max_s)


def response_headers(*metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """Allow-listed response metadata as HTTP headers; later wins (trailing over initial)."""
    headers: dict[str, str] = {}
    for entries in metadata:
        for key, value in entries or ():
            header = RESPONSE_METADATA_HEADERS.get(key)
            if header is not None and isinstance(value, str):
                headers[header] = value
    return headers
