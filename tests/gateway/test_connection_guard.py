"""The gateway's connection defences (gateway/connection_guard.py) on a real server:
header, body, idle and send timeouts, and the connection caps."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

import orjson
import pytest

from gateway.app import CONNECTIONS
from tests.support.gateway_harness import running_gateway
from tests.support.probe_servicer import ProbeBackend
from tests.support.probe_servicer import probe_gateway_config as _config

pytestmark = pytest.mark.asyncio


async def _read_until_closed(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout_s)


def _status_and_body(answer: bytes) -> tuple[int, dict[str, Any], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert lines[0].startswith("HTTP/1.1 ")
    return int(lines[0].split()[1]), headers, body


async def test_a_request_head_that_never_completes_gets_408_and_is_closed(
    probe: ProbeBackend,
) -> None:
    async with running_gateway(_config(probe, header_timeout_s=0.3)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: never ends
        answer = await _read_until_closed(reader, 5.0)
        elapsed = time.monotonic() - started
        writer.close()
    status, headers, body = _status_and_body(answer)
    assert status == 408
    assert headers["connection"] == "close"
    error = orjson.loads(body)["error"]
    assert (error["type"], error["code"]) == ("RequestTimeoutError", "request_timeout")
    assert 0.25 <= elapsed < 2.0


async def test_a_connection_that_sends_nothing_gets_408_after_the_header_timeout(
    probe: ProbeBackend,
) -> None:
    async with running_gateway(_config(probe, header_timeout_s=0.3)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        answer = await _read_until_closed(reader, 5.0)
        writer.close()
    assert _status_and_body(answer)[0] == 408


async def test_a_client_still_sending_its_head_gets_the_408_not_a_reset(
    probe: ProbeBackend,
) -> None:
    # Closing at once while bytes keep arriving resets the connection, and the client's
    # kernel may discard the 408 with it: the gateway half-closes and drops the rest.
    async with running_gateway(_config(probe, header_timeout_s=0.3)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        for _ in range(10):  # past the timeout, still sending
            writer.write(b"x" * 512)
            await asyncio.sleep(0.05)
        answer = await _read_until_closed(reader, 5.0)
        writer.close()
    assert _status_and_body(answer)[0] == 408


async def test_a_slow_but_steady_head_within_the_timeout_is_served(probe: ProbeBackend) -> None:
    async with running_gateway(_config(probe, header_timeout_s=1.0)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            writer.write(part)
            await asyncio.sleep(0.1)
        answer = await _read_until_closed(reader, 5.0)
        writer.close()
    assert _status_and_body(answer)[0] == 200


async def test_a_kept_alive_connections_next_head_gets_its_own_full_header_timeout(
    probe: ProbeBackend,
) -> None:
    # The timer is lazy (one pending check per connection): the check armed for the first
    # request fires before the second head's deadline and must wait on, not time it out.
    async with running_gateway(_config(probe, header_timeout_s=0.6)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.4)  # the first request's check is due 0.2 s from here
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends
        started = time.monotonic()
        answer = await _read_until_closed(reader, 5.0)
        elapsed = time.monotonic() - started
        writer.close()
    assert b"HTTP/1.1 408" in answer
    assert 0.55 <= elapsed < 2.0  # 0.6 s from the second head's first bytes, not 0.2


async def test_a_body_that_never_completes_gets_408_and_is_closed(
    probe: ProbeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_gateway(_config(probe, body_timeout_s=0.3)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(
            b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"id": '
        )
        started = time.monotonic()
        answer = await _read_until_closed(reader, 5.0)
        elapsed = time.monotonic() - started
        writer.close()
    status, _, body = _status_and_body(answer)
    assert status == 408
    assert orjson.loads(body)["error"]["message"] == "The request body did not arrive within 0.3 s."
    assert probe.servicer.calls == 0
    assert 0.25 <= elapsed < 2.0
    # Nothing "unhandled" from the server (aiohttp's "Error handling request", the gateway's own
    # error log). Other loggers are left out: grpc.aio's poller may report, on this test's loop,
    # that an earlier test's loop is closed, which says nothing about this connection.
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("aiohttp", "execgate"))
    ]


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    probe: ProbeBackend,
) -> None:
    async with running_gateway(_config(probe, keepalive_timeout_s=0.3)) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = await _read_until_closed(reader, 5.0)  # returns only once the server closes
        elapsed = time.monotonic() - started
        writer.close()
    assert _status_and_body(answer)[0] == 200
    assert 0.25 <= elapsed < 2.0


async def test_connections_over_the_per_client_cap_get_503_and_others_are_served(
    probe: ProbeBackend,
) -> None:
    async with running_gateway(_config(probe, max_connections_per_client=3)) as gateway:
        held = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        status, headers, body = _status_and_body(await _read_until_closed(reader, 5.0))
        writer.close()
        assert status == 503
        assert headers["retry-after"] == "1"
        assert orjson.loads(body)["error"]["code"] == "too_many_connections"
        # One held connection goes away: its slot is free again.
        held[0][1].close()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status_and_body(await _read_until_closed(reader, 5.0))[0] == 200
        writer.close()
        for _, held_writer in held[1:]:
            held_writer.close()


async def test_connections_over_the_total_cap_get_503(probe: ProbeBackend) -> None:
    async with running_gateway(_config(probe, max_connections=2)) as gateway:
        held = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(2)]
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        assert _status_and_body(await _read_until_closed(reader, 5.0))[0] == 503
        writer.close()
        assert gateway.app[CONNECTIONS].total == 2
        for _, held_writer in held:
            held_writer.close()


async def test_a_client_that_never_reads_a_large_answer_is_dropped_after_the_send_timeout(
    probe: ProbeBackend,
) -> None:
    config = _config(probe, send_timeout_s=0.5, write_buffer_bytes=16 * 1024)
    async with running_gateway(config) as gateway:
        # A small receive buffer, and nothing read: the 4 MB answer cannot be sent.
        sock = socket.create_connection(("127.0.0.1", gateway.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /v1/shelves/huge HTTP/1.1\r\nHost: x\r\n\r\n")
        counter = gateway.app[CONNECTIONS]
        for _ in range(100):  # up to 5 s
            if counter.total == 0:
                break
            await asyncio.sleep(0.05)
        assert counter.total == 0  # the gateway let go of the connection and its answer
        sock.close()
