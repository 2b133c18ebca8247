"""TLS and mutual TLS between gateway and service, TLS for grpcurl, certificates rotated.

Real service and gateway in this process on 127.0.0.1 port 0; certificates from trustme.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import GatewayConfig
from runtime.tls import ServerCertificate
from tests.support.certificates import server_files, write_ca, write_leaf
from tests.support.gateway_harness import running_gateway
from tests.support.grpcurl_tool import run_grpcurl
from tests.support.running_service import RunningService, start_service


@asynccontextmanager
async def tls_service(
    directory: Path, ca: trustme.CA, client_ca: Path | None = None
) -> AsyncIterator[RunningService]:
    files = server_files(ca, directory, "service", client_ca)
    async with start_service(directory, tls=ServerCertificate(files)) as service:
        yield service


async def _get_execution(service: RunningService, config: GatewayConfig) -> int:
    demo = service.demo
    headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
    path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['completed_10']}"
    async with (
        running_gateway(config) as gateway,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
        session.get(gateway.base_url + path, headers=headers) as response,
    ):
        await response.read()
        return response.status


def _gateway(service: RunningService, **settings: object) -> GatewayConfig:
    return GatewayConfig(
        port=0,
        backend=service.address,
        default_timeout_s=3.0,
        shutdown_timeout_s=1.0,
        **settings,  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
async def test_gateway_calls_the_service_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    async with tls_service(tmp_path, ca) as service:
        trusted = _gateway(service, backend_tls_ca_file=str(write_ca(ca, tmp_path, "ca")))
        assert await _get_execution(service, trusted) == 200
        # A gateway that trusts another CA refuses the service: 503, never a plaintext call.
        wrong = _gateway(service, backend_tls_ca_file=str(write_ca(trustme.CA(), tmp_path, "x")))
        assert await _get_execution(service, wrong) == 503
        assert await _get_execution(service, _gateway(service)) == 503  # plaintext


@pytest.mark.asyncio
async def test_mutual_tls_needs_the_gateway_certificate(tmp_path: Path) -> None:
    ca, clients = trustme.CA(), trustme.CA()
    clients_file = write_ca(clients, tmp_path, "clients")
    async with tls_service(tmp_path, ca, client_ca=clients_file) as service:
        ca_file = str(write_ca(ca, tmp_path, "ca"))
        cert, key = write_leaf(clients, tmp_path, "gateway", "gateway.example")
        with_cert = _gateway(
            service,
            backend_tls_ca_file=ca_file,
            backend_tls_cert_file=str(cert),
            backend_tls_key_file=str(key),
        )
        assert await _get_execution(service, with_cert) == 200
        without_cert = _gateway(service, backend_tls_ca_file=ca_file)
        assert await _get_execution(service, without_cert) == 503
        stranger, stranger_key = write_leaf(trustme.CA(), tmp_path, "stranger", "x.example")
        other_ca = _gateway(
            service,
            backend_tls_ca_file=ca_file,
            backend_tls_cert_file=str(stranger),
            backend_tls_key_file=str(stranger_key),
        )
        assert await _get_execution(service, other_ca) == 503


async def _health(address: str, ca: trustme.CA) -> bool:
    credentials = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
    # A channel of its own (no shared subchannel): each call is a new handshake.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.secure_channel(address, credentials, options=options) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.aio.AioRpcError as error:
            refused = error.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            if not refused:
                raise
            return False
        return True


@pytest.mark.asyncio
async def test_the_service_serves_a_new_certificate_without_a_restart(tmp_path: Path) -> None:
    old, new = trustme.CA(), trustme.CA()
    async with tls_service(tmp_path, old) as service:
        assert await _health(service.address, old)
        assert not await _health(service.address, new)
        write_leaf(new, tmp_path, "service")  # the files the service was started with
        # gRPC asks for the files before each new handshake: no signal needed.
        assert await _health(service.address, new)
        assert not await _health(service.address, old)


@pytest.mark.asyncio
async def test_the_gateway_takes_a_new_backend_ca_without_a_restart(tmp_path: Path) -> None:
    old, new = trustme.CA(), trustme.CA()
    async with tls_service(tmp_path, new) as service:
        ca_file = write_ca(old, tmp_path, "backend-ca")
        config = _gateway(service, backend_tls_ca_file=str(ca_file), tls_reload_s=0.1)
        demo = service.demo
        headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        url_path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['failed']}"
        async with (
            running_gateway(config) as gateway,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
        ):

            async def status() -> int:
                async with session.get(gateway.base_url + url_path, headers=headers) as response:
                    await response.read()
                    return response.status

            assert await status() == 503
            write_ca(new, tmp_path, "backend-ca")
            deadline = time.monotonic() + 15
            while await status() != 200:
                assert time.monotonic() < deadline, "the gateway never used the new CA"
                await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_grpcurl_over_tls(tmp_path: Path) -> None:
    ca, clients = trustme.CA(), trustme.CA()
    ca_file = str(write_ca(ca, tmp_path, "ca"))
    bounds = ("-connect-timeout", "5", "-max-time", "10")
    async with tls_service(tmp_path, ca) as service:
        verified = await run_grpcurl("-cacert", ca_file, *bounds, service.address, "list")
        assert verified.returncode == 0, verified.stderr
        assert "execgate.retrievers.v1.ExecutionService" in verified.stdout.split()
        unverified = await run_grpcurl("-insecure", *bounds, service.address, "list")
        assert unverified.returncode == 0, unverified.stderr
        plaintext = await run_grpcurl("-plaintext", *bounds, service.address, "list")
        assert plaintext.returncode != 0
    mtls_dir = tmp_path / "mtls"
    mtls_dir.mkdir()
    async with tls_service(mtls_dir, ca, client_ca=write_ca(clients, tmp_path, "clients")) as svc:
        refused = await run_grpcurl("-cacert", ca_file, *bounds, svc.address, "list")
        assert refused.returncode != 0
        cert, key = write_leaf(clients, tmp_path, "grpcurl", "grpcurl.example")
        client = ("-cert", str(cert), "-key", str(key))
        accepted = await run_grpcurl("-cacert", ca_file, *client, *bounds, svc.address, "list")
        assert accepted.returncode == 0, accepted.stderr
