"""One port for all workers: port 0 resolved once, a taken port refused, the port shared."""

from __future__ import annotations

import socket

import pytest

from runtime.ports import reserve_port


def _reuseport_listener(port: int) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    return listener


def test_port_zero_becomes_one_port_that_workers_can_share() -> None:
    reserved = reserve_port("127.0.0.1", 0)
    try:
        assert reserved.port != 0
        assert reserved.address == f"127.0.0.1:{reserved.port}"
        # Two "workers" listen on it while the reservation is held.
        with _reuseport_listener(reserved.port), _reuseport_listener(reserved.port) as second:
            with socket.create_connection(("127.0.0.1", reserved.port), timeout=5):
                pass
            assert second.getsockname()[1] == reserved.port
    finally:
        reserved.release()


def test_a_port_another_program_listens_on_is_refused() -> None:
    with socket.socket() as other:  # no SO_REUSEPORT, as most programs
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError, match="in use"):
            reserve_port("127.0.0.1", other.getsockname()[1])


def test_ipv6_addresses_are_bracketed() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        reserved = reserve_port("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        assert reserved.address == f"[::1]:{reserved.port}"
    finally:
        reserved.release()
