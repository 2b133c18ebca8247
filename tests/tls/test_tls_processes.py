"""The commands as an operator runs them: `execgate service` and `execgate gateway` with
TLS on both hops, mutual TLS between them, the admin listener, and SIGHUP reloads, all
configured by flags and environment variables."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest
import trustme

from runtime.launcher import Child, python_module
from runtime.ready_file import ADMIN, GRPC, HTTP
from tests.support.certificates import LOOPBACK, client_context, served_name, write_ca, write_leaf
from tests.support.grpcurl_tool import run_grpcurl
from tests.support.supervised import seeded_store

pytestmark = pytest.mark.slow


@pytest.mark.asyncio
async def test_tls_everywhere_with_reloads(tmp_path: Path) -> None:
    store_url, demo = await seeded_store(tmp_path)
    ca, internal = trustme.CA(), trustme.CA()  # public HTTPS; service and gateway identities
    internal_ca = str(write_ca(internal, tmp_path, "internal-ca"))
    service_cert, service_key = write_leaf(internal, tmp_path, "service", common_name="svc-1")
    gateway_cert, gateway_key = write_leaf(internal, tmp_path, "gateway-client", "gw.example")
    https_cert, https_key = write_leaf(ca, tmp_path, "https", common_name="web-1")
    service = Child(
        "service",
        python_module(
            "service", "serve", "--listen", "127.0.0.1:0",
            "--tls-cert-file", str(service_cert), "--tls-key-file", str(service_key),
            "--tls-client-ca-file", internal_ca,
        ),
        env={**os.environ, "EXECGATE_STORE": store_url},
        log=tmp_path / "service.log",
    )  # fmt: skip
    gateway: Child | None = None
    try:
        grpc_address = service.wait_ready(30).address(GRPC)
        gateway = Child(
            "gateway",
            python_module("gateway", "serve"),
            env={
                **os.environ,
                "EXECGATE_GATEWAY_LISTEN": "127.0.0.1:0",
                "EXECGATE_GATEWAY_BACKEND": grpc_address,
                "EXECGATE_GATEWAY_TLS_CERT_FILE": str(https_cert),
                "EXECGATE_GATEWAY_TLS_KEY_FILE": str(https_key),
                "EXECGATE_GATEWAY_TLS_RELOAD_SECONDS": "0",  # SIGHUP only
                "EXECGATE_GATEWAY_BACKEND_TLS_CA_FILE": internal_ca,
                "EXECGATE_GATEWAY_BACKEND_TLS_CERT_FILE": str(gateway_cert),
                "EXECGATE_GATEWAY_BACKEND_TLS_KEY_FILE": str(gateway_key),
                "EXECGATE_GATEWAY_ADMIN_LISTEN": "127.0.0.1:0",
            },
            log=tmp_path / "gateway.log",
        )
        ready = gateway.wait_ready(30)
        port, admin = ready.port(HTTP), ready.address(ADMIN)
        base = f"https://{LOOPBACK}:{port}"
        context = client_context(ca)
        headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['completed_10']}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            async with http.get(base + path, headers=headers, ssl=context) as response:
                assert response.status == 200  # HTTPS → gateway → mutual TLS → service
            async with http.get(base + "/metrics", ssl=context) as response:
                assert response.status == 404  # on the admin listener instead
            async with http.get(f"http://{admin}/metrics") as response:
                text = await response.text()
            assert 'http_requests_total{code="200",method="GET",route=' in text
            assert 'grpc_client_handled_total{grpc_code="OK"' in text
            async with http.get(f"http://{admin}/openapi.json") as response:
                assert response.status == 200

            # New HTTPS certificate, SIGHUP: served at once, same process.
            assert await served_name(port, context) == "web-1"
            write_leaf(ca, tmp_path, "https", common_name="web-2")
            os.kill(gateway.process.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while await served_name(port, context) != "web-2":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)

            # New service certificate, SIGHUP: new clients get it, the gateway keeps working.
            write_leaf(internal, tmp_path, "service", common_name="svc-2")
            os.kill(service.process.pid, signal.SIGHUP)
            client = ("-cert", str(gateway_cert), "-key", str(gateway_key))
            listed = await run_grpcurl("-cacert", internal_ca, *client, grpc_address, "list")
            assert listed.returncode == 0, listed.stderr
            async with http.get(base + path, headers=headers, ssl=context) as response:
                assert response.status == 200
        assert gateway.process.poll() is None
        assert service.process.poll() is None
    finally:
        if gateway is not None:
            gateway.stop()
        service.stop()
    assert "certificate reloaded" in (tmp_path / "gateway.log").read_text()
    assert "certificate reloaded" in (tmp_path / "service.log").read_text()


@pytest.mark.asyncio
async def test_single_process_serves_both_ports_with_its_certificate(tmp_path: Path) -> None:
    store_url, demo = await seeded_store(tmp_path)
    ca = trustme.CA()
    cert, key = write_leaf(ca, tmp_path, "node", common_name="node-1")
    ca_file = str(write_ca(ca, tmp_path, "ca"))
    node = Child(
        "serve",
        python_module(
            "singleprocess", "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
            "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        ),
        env={**os.environ, "EXECGATE_STORE": store_url},
        log=tmp_path / "serve.log",
    )  # fmt: skip
    try:
        ready = node.wait_ready(30)
        headers = {"Authorization": f"Bearer {demo.api_key}", "X-Namespace": demo.namespace.name}
        path = f"/v1/retrievers/{demo.retriever.id}/executions/{demo.executions['failed']}"
        url = f"https://{LOOPBACK}:{ready.port(HTTP)}{path}"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
            http.get(url, headers=headers, ssl=client_context(ca)) as response,
        ):
            assert response.status == 200
        listed = await run_grpcurl("-cacert", ca_file, ready.address(GRPC), "list")
        assert listed.returncode == 0, listed.stderr
        plaintext = await run_grpcurl("-plaintext", ready.address(GRPC), "list")
        assert plaintext.returncode != 0
    finally:
        node.stop()


@pytest.mark.asyncio
async def test_workers_share_https_and_admin_ports_and_reload_on_sighup(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = write_leaf(ca, tmp_path, "https", common_name="web-1")
    gateway = Child(
        "gateway",
        python_module(
            "gateway", "serve", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
            "--workers", "2", "--admin-listen", "127.0.0.1:0", "--tls-reload-seconds", "0",
            "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        ),
        log=tmp_path / "gateway.log",
    )  # fmt: skip
    try:
        ready = gateway.wait_ready(60)
        port, admin = ready.port(HTTP), ready.address(ADMIN)
        context = client_context(ca)
        assert {await served_name(port, context) for _ in range(8)} == {"web-1"}
        write_leaf(ca, tmp_path, "https", common_name="web-2")
        os.kill(gateway.process.pid, signal.SIGHUP)  # the supervisor: forwarded to each worker
        deadline = time.monotonic() + 10
        while {await served_name(port, context) for _ in range(8)} != {"web-2"}:
            assert time.monotonic() < deadline, "a worker kept the old certificate"
            await asyncio.sleep(0.1)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://{admin}/metrics") as response,
        ):
            text = await response.text()
        assert "execgate_metrics_workers 2.0" in text
        assert gateway.process.poll() is None
    finally:
        gateway.stop()
    assert "worker exited" not in (tmp_path / "gateway.log").read_text()  # none died of SIGHUP
