"""HTTPS on the gateway's listener: served, verified, mutual TLS, certificates reloaded.

Certificates are made at test time (trustme); the gateway is real, on 127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import trustme

from gateway.access_log import AccessLog
from gateway.app import build_app, start_site
from gateway.config import GatewayConfig
from runtime.tls import ServerCertificate, checking_certificates, server_check
from tests.support.certificates import (
    LOOPBACK,
    client_context,
    common_name,
    served_name,
    write_ca,
    write_leaf,
)


@asynccontextmanager
async def https_gateway(config: GatewayConfig) -> AsyncIterator[int]:
    """The gateway serving HTTPS as `gateway serve` does (reload checks included)."""
    app = build_app(config, access_log=AccessLog(None))
    certificate = ServerCertificate(config.tls)
    runner, port = await start_site(app, config, certificate.ssl_context())
    try:
        async with checking_certificates([server_check(certificate)], config.tls_reload_s):
            yield port
    finally:
        await runner.cleanup()


def _config(cert: Path, key: Path, **settings: object) -> GatewayConfig:
    # No backend is listening: these tests need only /healthz, which does not call it.
    return GatewayConfig(
        port=0,
        backend="127.0.0.1:9",
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        shutdown_timeout_s=1.0,
        **settings,  # type: ignore[arg-type]
    )


async def _healthz(port: int, context: ssl.SSLContext | None, scheme: str = "https") -> int:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{scheme}://{LOOPBACK}:{port}/healthz", ssl=context or False) as response,
    ):
        await response.read()
        return response.status


@pytest.mark.asyncio
async def test_https_is_served_and_verified(tmp_path: Path) -> None:
    ca = trustme.CA()
    async with https_gateway(_config(*write_leaf(ca, tmp_path, "server"))) as port:
        assert await _healthz(port, client_context(ca)) == 200
        # A client that does not trust the CA refuses the gateway ...
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await _healthz(port, client_context(trustme.CA()))
        # ... and plain HTTP gets no answer on the HTTPS port.
        with pytest.raises(aiohttp.ClientError):
            await _healthz(port, None, scheme="http")


@pytest.mark.asyncio
async def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path) -> None:
    ca, clients = trustme.CA(), trustme.CA()
    config = _config(
        *write_leaf(ca, tmp_path, "server"),
        tls_client_ca_file=str(write_ca(clients, tmp_path, "clients")),
    )
    async with https_gateway(config) as port:
        with pytest.raises(aiohttp.ClientError):
            await _healthz(port, client_context(ca))
        # A certificate of another CA is refused too.
        stranger = write_leaf(trustme.CA(), tmp_path, "stranger", "stranger.example")
        with pytest.raises(aiohttp.ClientError):
            await _healthz(port, client_context(ca, stranger))
        member = write_leaf(clients, tmp_path, "client", "client.example")
        assert await _healthz(port, client_context(ca, member)) == 200


@pytest.mark.asyncio
async def test_changed_files_are_served_without_a_restart(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = write_leaf(ca, tmp_path, "server", common_name="first")
    async with https_gateway(_config(cert, key, tls_reload_s=0.1)) as port:
        context = client_context(ca)
        # A connection made before the change, kept alive across it.
        reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context)
        assert common_name(writer.get_extra_info("peercert")) == "first"
        write_leaf(ca, tmp_path, "server", common_name="second")
        deadline = time.monotonic() + 10
        while await served_name(port, context) != "second":
            assert time.monotonic() < deadline, "the new certificate was never served"
            await asyncio.sleep(0.05)
        # The old connection still works: the server was never restarted.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()


@pytest.mark.asyncio
async def test_sighup_reloads_at_once(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = write_leaf(ca, tmp_path, "server", common_name="first")
    # tls_reload_s=0: no periodic check, only SIGHUP.
    async with https_gateway(_config(cert, key, tls_reload_s=0)) as port:
        context = client_context(ca)
        write_leaf(ca, tmp_path, "server", common_name="second")
        await asyncio.sleep(0.2)
        assert await served_name(port, context) == "first"
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.1)
        assert await served_name(port, context) == "second"


@pytest.mark.asyncio
async def test_a_half_written_pair_keeps_the_previous_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = write_leaf(ca, tmp_path, "server", common_name="first")
    async with https_gateway(_config(cert, key, tls_reload_s=0.05)) as port:
        context = client_context(ca)
        # A new key without its certificate yet: not a pair, so nothing changes ...
        _, other_key = write_leaf(ca, tmp_path, "next")
        key.write_bytes(other_key.read_bytes())
        await asyncio.sleep(0.3)
        assert await served_name(port, context) == "first"
        # ... until the certificate arrives.
        cert.write_bytes((tmp_path / "next.pem").read_bytes())
        deadline = time.monotonic() + 10
        while await served_name(port, context) != "next":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
