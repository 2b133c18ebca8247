"""One concrete port for all workers of a server, held by the supervisor.

With `--listen 127.0.0.1:0` each worker binding port 0 would get a different
port. The supervisor binds a SO_REUSEPORT socket first, reads the port the
kernel chose, hands that port to every worker, and keeps the socket bound (it
never listens, so the kernel gives it no connections) for as long as it
supervises: a restarted worker then always gets the same port back.

A fixed port is checked with a plain bind first, so a port held by another
program fails at start-up as it does with one worker, instead of being shared.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReservedPort:
    host: str
    port: int
    holder: socket.socket  # closed by `release`

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def release(self) -> None:
        self.holder.close()


def reserve_port(host: str, port: int) -> ReservedPort:
    """Bind `host:port` with SO_REUSEPORT (port 0: a free one); raises OSError if taken."""
    family = _family(host)
    if port != 0:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR as the servers set it: TIME_WAIT is no conflict, a listener is.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))  # EADDRINUSE when someone else listens there
    holder = socket.socket(family, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except OSError:
        holder.close()
        raise
    return ReservedPort(host, holder.getsockname()[1], holder)


def _family(host: str) -> socket.AddressFamily:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return infos[0][0] if infos else socket.AF_INET
