"""Certificates made at test time (trustme), written where the servers read them."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import trustme

from runtime.tls import ServerTlsFiles

LOOPBACK = "127.0.0.1"


def write_leaf(
    ca: trustme.CA, directory: Path, name: str, *identities: str, common_name: str = ""
) -> tuple[Path, Path]:
    """A certificate of `ca` for `identities` (default: 127.0.0.1) as `name`.pem / `name`.key,
    its common name `common_name` (default: `name`).

    Written to a temporary file and renamed, as Kubernetes swaps a Secret's files, so a
    reader never sees half a file.
    """
    leaf = ca.issue_cert(*(identities or (LOOPBACK,)), common_name=common_name or name)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    for path, data in (
        (cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems)),
        (key, leaf.private_key_pem.bytes()),
    ):
        scratch = path.with_suffix(".tmp")
        scratch.write_bytes(data)
        os.replace(scratch, path)
    return cert, key


def write_ca(ca: trustme.CA, directory: Path, name: str) -> Path:
    path = directory / f"{name}.pem"
    scratch = path.with_suffix(".tmp")
    ca.cert_pem.write_to_path(str(scratch))
    os.replace(scratch, path)
    return path


def server_files(
    ca: trustme.CA, directory: Path, name: str = "server", client_ca: Path | None = None
) -> ServerTlsFiles:
    cert, key = write_leaf(ca, directory, name)
    return ServerTlsFiles(str(cert), str(key), str(client_ca) if client_ca else "")


def client_context(ca: trustme.CA, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client context trusting only `ca`, presenting `cert` if given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def common_name(peer_certificate: dict[str, object]) -> str:
    """The CN of a certificate as `SSLSocket.getpeercert()` gives it."""
    for rdn in peer_certificate["subject"]:  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    raise AssertionError("no common name")


async def served_name(port: int, context: ssl.SSLContext) -> str:
    """The common name of the certificate a new connection to 127.0.0.1:`port` is served with."""
    _, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context)
    try:
        return common_name(writer.get_extra_info("peercert"))
    finally:
        writer.close()
        await writer.wait_closed()
