"""TLS for every listener and for the gateway's channel, from PEM files that may change.

Certificates rotate (cert-manager, an ACME client, a Secret update) without a restart:
- an HTTPS listener (aiohttp) keeps one `ssl.SSLContext`; `ServerCertificate.ssl_context`
  loads the new chain into that same context, which every new handshake then uses, when
  the files change (checked every `--tls-reload-seconds`) or at once on SIGHUP;
- a gRPC listener uses `grpc.dynamic_ssl_server_credentials`, whose fetcher gRPC calls
  before each new handshake: it hands over the new files as soon as they differ;
- the gateway's channel to the service has fixed credentials, so the gateway opens a new
  channel when its client files change (`gateway/upstream.py`).
A change is taken only once the files form a valid pair (a key written before its
certificate is retried at the next check); until then the previous certificate stays.
Connections already open keep the certificate they were made with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import grpc

from runtime.tasks import cancel_and_wait

_log: Final = logging.getLogger("execgate.tls")

# A file's identity and contents version: a rename (how Kubernetes swaps a Secret's
# files) changes the inode, an in-place write the modification time or size.
_FileStamp = tuple[int, int, int] | None


class TlsConfigError(ValueError):
    """TLS settings that cannot work (half a key pair, a file that does not load)."""


@dataclass(frozen=True, slots=True)
class ServerTlsFiles:
    """A listener's certificate files; no `cert_file`: plain TCP."""

    cert_file: str = ""
    key_file: str = ""
    # Set: every client must present a certificate signed by a CA in this file (mTLS).
    client_ca_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    def check(self, flags: str = "--tls") -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsConfigError(f"{flags}-cert-file and {flags}-key-file go together")
        if self.client_ca_file and not self.cert_file:
            raise TlsConfigError(f"{flags}-client-ca-file needs {flags}-cert-file")


@dataclass(frozen=True, slots=True)
class ClientTlsFiles:
    """How the gateway's channel verifies the service and (mTLS) identifies itself."""

    enabled: bool = False
    ca_file: str = ""  # "" : the system's trusted CAs
    cert_file: str = ""
    key_file: str = ""
    # The name the service's certificate must carry when it differs from the target's
    # host (e.g. a list of IP addresses whose certificate names a DNS name).
    server_name: str = ""

    def check(self, flags: str = "--backend-tls") -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsConfigError(f"{flags}-cert-file and {flags}-key-file go together")

    def paths(self) -> tuple[str, ...]:
        return tuple(path for path in (self.ca_file, self.cert_file, self.key_file) if path)


def file_stamps(paths: Sequence[str]) -> tuple[_FileStamp, ...]:
    """What changes when any of `paths` is rewritten or replaced; None for a missing file."""
    stamps: list[_FileStamp] = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_ino, status.st_mtime_ns, status.st_size))
    return tuple(stamps)


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise TlsConfigError(f"cannot read {path}: {error.strerror}") from None


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamps: tuple[_FileStamp, ...]
    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes | None


class ServerCertificate:
    """A listener's certificate, re-read when its files change; thread-safe (gRPC's
    fetcher runs on a gRPC thread)."""

    def __init__(self, files: ServerTlsFiles) -> None:
        files.check()
        self.files = files
        self._paths = tuple(p for p in (files.cert_file, files.key_file, files.client_ca_file) if p)
        self._lock = threading.Lock()
        self._force = False
        self.generation = 0  # how many times the certificate was (re)loaded
        self._loaded = self._load()  # a bad file stops start-up here, named
        self._contexts: list[ssl.SSLContext] = []
        self._given_to_grpc = 0

    def _load(self) -> _Loaded:
        """Read and validate the files: the key must match the certificate."""
        files = self.files
        stamps = file_stamps(self._paths)
        cert_pem, key_pem = read_file(files.cert_file), read_file(files.key_file)
        client_ca_pem = read_file(files.client_ca_file) if files.client_ca_file else None
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            scratch.load_cert_chain(files.cert_file, files.key_file)
            if files.client_ca_file:
                scratch.load_verify_locations(files.client_ca_file)
        except (ssl.SSLError, OSError) as error:
            raise TlsConfigError(
                f"{files.cert_file} / {files.key_file}: not a certificate and its key ({error})"
            ) from None
        # Written in between? Then the pair read may not be the pair checked: next time.
        if file_stamps(self._paths) != stamps:
            raise TlsConfigError(f"{files.cert_file}: changed while being read")
        self.generation += 1
        return _Loaded(stamps, cert_pem, key_pem, client_ca_pem)

    def reload_now(self) -> None:
        """SIGHUP: read the files at the next check even if they look unchanged."""
        with self._lock:
            self._force = True
        self.refresh()

    def refresh(self) -> bool:
        """Take the files if they changed (and form a valid pair); whether they were taken."""
        with self._lock:
            if not self._force and file_stamps(self._paths) == self._loaded.stamps:
                return False
            self._force = False
            try:
                self._loaded = self._load()
            except TlsConfigError as error:
                _log.warning("certificate not reloaded, the previous one stays: %s", error)
                return False
            for context in self._contexts:
                _load_into(context, self.files)
        _log.info(
            "certificate reloaded", extra={"cert_file": self.files.cert_file, "tls": "reload"}
        )
        return True

    def ssl_context(self) -> ssl.SSLContext:
        """A server context for aiohttp; `refresh` loads new certificates into it."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_into(context, self.files)
        if self.files.client_ca_file:
            context.verify_mode = ssl.CERT_REQUIRED
        with self._lock:
            self._contexts.append(context)
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for a gRPC port, re-fetched by gRPC before each new handshake."""
        with self._lock:
            first = self._configuration()
        return grpc.dynamic_ssl_server_credentials(
            first,
            self._fetch_for_grpc,  # type: ignore[arg-type]  # the stubs miss `| None`
            require_client_authentication=bool(self.files.client_ca_file),
        )

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        loaded = self._loaded
        self._given_to_grpc = self.generation
        return grpc.ssl_server_certificate_configuration(
            [(loaded.key_pem, loaded.cert_pem)], root_certificates=loaded.client_ca_pem
        )

    def _fetch_for_grpc(self) -> grpc.ServerCertificateConfiguration | None:
        # gRPC's contract: None keeps the current configuration.
        self.refresh()
        with self._lock:
            if self._given_to_grpc == self.generation:
                return None
            return self._configuration()


def _load_into(context: ssl.SSLContext, files: ServerTlsFiles) -> None:
    # Loading into a context in use replaces its certificate for new handshakes.
    context.load_cert_chain(files.cert_file, files.key_file)
    if files.client_ca_file:
        # Adds the CAs (OpenSSL keeps the ones loaded before until a restart).
        context.load_verify_locations(files.client_ca_file)


def channel_credentials(files: ClientTlsFiles) -> grpc.ChannelCredentials:
    """Credentials of a channel that verifies the service (and presents a certificate)."""
    files.check()
    return grpc.ssl_channel_credentials(
        root_certificates=read_file(files.ca_file) if files.ca_file else None,
        private_key=read_file(files.key_file) if files.key_file else None,
        certificate_chain=read_file(files.cert_file) if files.cert_file else None,
    )


# --- when to check: every few seconds, and at once on SIGHUP ----------------------------

Check = Callable[[bool], object]  # called with force=True on SIGHUP
_sighup_checks: list[Check] = []


def _run_checks(checks: Sequence[Check], force: bool) -> None:
    for check in checks:
        try:
            check(force)
        except Exception:  # one failed check must not stop the others, nor the loop
            _log.exception("certificate check failed")


@contextlib.asynccontextmanager
async def checking_certificates(checks: Sequence[Check], interval_s: float) -> AsyncIterator[None]:
    """Run `checks` every `interval_s` (0: never) and on SIGHUP, until the block ends.

    One SIGHUP handler per process serves every listener (a loop has one handler per signal).
    """
    if not checks:  # no TLS: SIGHUP keeps its default meaning
        yield
        return
    loop = asyncio.get_running_loop()
    if not _sighup_checks:
        # No signals off the main thread: then only the periodic check.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, _run_checks, _sighup_checks, True)
    _sighup_checks.extend(checks)

    async def poll() -> None:
        while True:
            await asyncio.sleep(interval_s)
            _run_checks(checks, False)

    task = asyncio.create_task(poll()) if interval_s > 0 else None
    try:
        yield
    finally:
        for check in checks:
            _sighup_checks.remove(check)
        if not _sighup_checks:
            loop.remove_signal_handler(signal.SIGHUP)
        # Last, so the clean-up above happens even if this wait is interrupted.
        await cancel_and_wait(task)


def server_check(certificate: ServerCertificate) -> Check:
    def check(force: bool) -> bool:
        if force:
            certificate.reload_now()
            return True
        return certificate.refresh()

    return check
