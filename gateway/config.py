"""The gateway's settings: one frozen value built once at start-up.

Every setting has a command-line flag and an environment variable
`EXECGATE_GATEWAY_<NAME>` (see `gateway/cli.py`); the defaults here are the
ones a local run uses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gateway.cors_policy import CorsConfigError, CorsPolicy
from runtime.tls import ClientTlsFiles, ServerTlsFiles, TlsConfigError

DEFAULT_SERVICES = ("execgate.retrievers.v1.ExecutionService",)


class ConfigError(ValueError):
    """A setting has a value the gateway cannot use; raised at start-up only."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    # Where the REST gateway listens.
    host: str = "127.0.0.1"
    port: int = 8080
    # The gRPC backend: `host:port`, a comma-separated list of them, or any
    # gRPC target URI such as `dns:///service.internal:50051`.
    backend: str = "127.0.0.1:50051"
    # Fully qualified names of the gRPC services exposed over REST.
    services: tuple[str, ...] = DEFAULT_SERVICES
    # Deadline of an upstream call when the client sends no X-Request-Timeout.
    default_timeout_s: float = 10.0
    # Upper bound of a client-supplied X-Request-Timeout.
    max_timeout_s: float = 60.0
    # Upstream deadline of a server-streaming call (SSE/NDJSON) without X-Request-Timeout,
    # and the longest a client may ask for: streams outlive unary calls by far.
    stream_timeout_s: float = 3600.0
    # Seconds between heartbeats on a quiet stream (an SSE comment, an empty NDJSON
    # line) so that proxies keep it open; also the longest wait for the first event
    # before the 200 headers go out.
    stream_heartbeat_s: float = 15.0
    # Server-streaming calls open at once per API key (Authorization header); more: 429.
    max_streams_per_key: int = 100
    # Request limits (aiohttp enforces them before a handler runs).
    max_body_bytes: int = 1024 * 1024
    max_line_size: int = 8190  # request line (method + URL) and one header line
    max_field_size: int = 8190  # one header field
    max_headers: int = 64  # number of header lines
    # Connection defences (gateway/connection_guard.py). Seconds a client has to send a
    # request head (from connecting, or from the first byte of a next request)...
    header_timeout_s: float = 10.0
    # ...and its body; then 408 and the connection closes.
    body_timeout_s: float = 30.0
    # Seconds an idle keep-alive connection stays open (nginx's and Envoy's 75 s).
    keepalive_timeout_s: float = 75.0
    # Seconds a response may wait for a client that reads nothing before it is dropped.
    send_timeout_s: float = 30.0
    # Transport write buffer high-water mark: above it, writing waits for the client.
    write_buffer_bytes: int = 64 * 1024
    # Open connections in all and from one client address; beyond, 503 and close.
    max_connections: int = 10_000
    max_connections_per_client: int = 256
    # Requests being answered at once per process, of every kind on the main listener
    # (health, metrics, docs and UI too; open event streams not): beyond it, API requests
    # get 503 with Retry-After at once; the others are never refused (gateway/middleware.py).
    max_in_flight: int = 256
    # Failed authentications (401) a client address may have in a burst, and the rate
    # (per second) at which it earns new ones; beyond, 429 with Retry-After.
    auth_failure_burst: int = 20
    auth_failure_rate: float = 1.0
    # Largest gRPC message either way; 1,000-document executions are ~330 KB.
    max_message_bytes: int = 16 * 1024 * 1024
    # HTTP/2 keepalive pings on the channel while calls are in flight.
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
    # Seconds advertised in Retry-After when the backend is unavailable.
    retry_after_s: int = 1
    # Deadline of the /readyz health check.
    ready_timeout_s: float = 1.0
    # Responses at least this large are gzip-compressed when the client accepts it.
    gzip_min_bytes: int = 1024
    # After SIGTERM: seconds /readyz answers 503 while requests are still served
    # (so a load balancer stops sending new ones), then the listener closes...
    drain_s: float = 0.0
    # ...and in-flight requests get this many seconds to finish.
    shutdown_timeout_s: float = 15.0
    # Python logging level of the gateway's loggers.
    log_level: str = "INFO"
    # One JSON line per request on stderr.
    access_log: bool = True
    # Serve the execution viewer (a web page calling this REST API) under /ui/.
    ui: bool = True
    # Processes serving the one port (SO_REUSEPORT) under a supervisor; 1: this process alone.
    workers: int = 1
    # Written once listening: pid and bound address (runtime/ready_file.py); "" none.
    ready_file: str = ""
    # HTTPS on the listener (runtime/tls.py): certificate and key files ("": plain HTTP);
    # with a client CA, every client must present a certificate it signed (mutual TLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # How often changed certificate files are noticed (SIGHUP: at once); 0: SIGHUP only.
    tls_reload_s: float = 5.0
    # TLS to the backend: on with the system's CAs, or verifying it with a CA file ...
    backend_tls: bool = False
    backend_tls_ca_file: str = ""
    # ... presenting this certificate when the service requires one (mutual TLS) ...
    backend_tls_cert_file: str = ""
    backend_tls_key_file: str = ""
    # ... and expecting this name in its certificate ("": the target's host).
    backend_tls_server_name: str = ""

    # HOST:PORT of a second, plain-HTTP listener for /metrics, /openapi.json and /docs
    # (then absent from the main one); "": they are served on the main listener.
    admin_listen: str = ""
    # CORS (gateway/cors.py): origins allowed to call from a browser (empty: CORS off;
    # `*`: any, without credentials) ...
    cors_allow_origins: tuple[str, ...] = ()
    # ... whether their requests may carry cookies or client certificates ...
    cors_allow_credentials: bool = False
    # ... and how long a browser may cache a preflight's answer.
    cors_max_age_s: int = 600

    @property
    def tls(self) -> ServerTlsFiles:
        return ServerTlsFiles(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    @property
    def backend_tls_files(self) -> ClientTlsFiles:
        enabled = self.backend_tls or bool(self.backend_tls_ca_file or self.backend_tls_cert_file)
        return ClientTlsFiles(
            enabled,
            self.backend_tls_ca_file,
            self.backend_tls_cert_file,
            self.backend_tls_key_file,
            self.backend_tls_server_name,
        )

    def __post_init__(self) -> None:
        try:
            self.tls.check()
            self.backend_tls_files.check()
        except TlsConfigError as error:
            raise ConfigError(str(error)) from None
        if self.tls_reload_s < 0:
            raise ConfigError("tls_reload_s must be >= 0")
        try:
            self.cors_policy()
        except CorsConfigError as error:
            raise ConfigError(str(error)) from None
        if self.admin_listen:
            parse_listen(self.admin_listen)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if not self.services:
            raise ConfigError("at least one service must be exposed")
        if not self.backend.strip():
            raise ConfigError("backend must name at least one address")
        if not 0 < self.default_timeout_s <= self.max_timeout_s:
            raise ConfigError(
                "timeouts must satisfy 0 < default_timeout_s <= max_timeout_s, got "
                f"{self.default_timeout_s} and {self.max_timeout_s}"
            )
        if (
            self.stream_timeout_s <= 0
            or self.stream_heartbeat_s <= 0
            or self.max_streams_per_key <= 0
        ):
            raise ConfigError(
                "stream_timeout_s, stream_heartbeat_s and max_streams_per_key must be positive"
            )
        for name in (
            "max_body_bytes",
            "max_line_size",
            "max_field_size",
            "max_headers",
            "header_timeout_s",
            "body_timeout_s",
            "keepalive_timeout_s",
            "send_timeout_s",
            "write_buffer_bytes",
            "max_connections",
            "max_connections_per_client",
            "max_in_flight",
            "auth_failure_burst",
            "auth_failure_rate",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.max_message_bytes <= 0 or self.gzip_min_bytes < 0:
            raise ConfigError("max_message_bytes must be positive, gzip_min_bytes >= 0")
        if (
            self.retry_after_s < 0
            or self.ready_timeout_s <= 0
            or self.shutdown_timeout_s < 0
            or self.drain_s < 0
        ):
            raise ConfigError(
                "retry_after_s, ready_timeout_s, drain_s and shutdown_timeout_s out of range"
            )

    def cors_policy(self) -> CorsPolicy | None:
        """The CORS policy, None when CORS is off."""
        return CorsPolicy.from_settings(
            self.cors_allow_origins, self.cors_allow_credentials, self.cors_max_age_s
        )

    @property
    def grpc_target(self) -> str:
        return grpc_target(self.backend)


def grpc_target(backend: str) -> str:
    """The gRPC target for `backend`.

    A target URI (`dns:///…`, `ipv4:…`, `unix:…`) is used as given. A
    comma-separated list of `host:port` becomes one `ipv4:`/`ipv6:` target so
    that the channel's `round_robin` policy spreads calls over every address;
    a single `host:port` is used as given (gRPC resolves it through DNS).
    """
    backend = backend.strip()
    if "://" in backend or backend.startswith(("ipv4:", "ipv6:", "unix:", "dns:")):
        return backend
    addresses = [part.strip() for part in backend.split(",") if part.strip()]
    if not addresses:
        raise ConfigError("backend must name at least one address")
    for address in addresses:
        _split_host_port(address)
    if len(addresses) == 1:
        return addresses[0]
    families = {_address_family(_split_host_port(address)[0]) for address in addresses}
    if len(families) != 1 or None in families:
        raise ConfigError(
            "a list of backends must be IP addresses of one family (use a dns:/// target "
            f"for host names): {backend!r}"
        )
    return f"{families.pop()}:{','.join(addresses)}"


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:8080`) → (host, port)."""
    host, port = _split_host_port(listen)
    return host.strip("[]"), port


def _split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"expected host:port, got {address!r}")
    return host, int(port)


def _address_family(host: str) -> str | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return "ipv4" if ip.version == 4 else "ipv6"
