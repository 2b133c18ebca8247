"""TLS settings that cannot work stop start-up with a message naming the files or flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from gateway.config import ConfigError, GatewayConfig
from runtime.tls import ClientTlsFiles, ServerCertificate, ServerTlsFiles, TlsConfigError
from service.server import ServeSettings
from tests.support.certificates import write_leaf


def test_half_a_key_pair_is_refused() -> None:
    with pytest.raises(TlsConfigError, match="--tls-cert-file and --tls-key-file go together"):
        ServerTlsFiles(cert_file="a.pem").check()
    with pytest.raises(TlsConfigError, match="--tls-client-ca-file needs --tls-cert-file"):
        ServerTlsFiles(client_ca_file="ca.pem").check()
    with pytest.raises(TlsConfigError, match="--backend-tls-cert-file and --backend-tls-key-file"):
        ClientTlsFiles(enabled=True, key_file="k.pem").check()
    with pytest.raises(ConfigError, match="go together"):
        GatewayConfig(tls_key_file="k.pem")
    with pytest.raises(ConfigError, match="go together"):
        GatewayConfig(backend_tls_cert_file="c.pem")
    with pytest.raises(TlsConfigError, match="--tls-client-ca-file needs --tls-cert-file"):
        ServeSettings(tls_client_ca_file="ca.pem")
    with pytest.raises(TlsConfigError, match="go together"):
        ServeSettings(tls_cert_file="c.pem")


def test_backend_tls_is_on_with_any_of_its_files() -> None:
    assert not GatewayConfig().backend_tls_files.enabled
    assert GatewayConfig(backend_tls=True).backend_tls_files.enabled
    assert GatewayConfig(backend_tls_ca_file="ca.pem").backend_tls_files.enabled


def test_a_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, _ = write_leaf(ca, tmp_path, "one")
    _, other_key = write_leaf(ca, tmp_path, "two")
    with pytest.raises(TlsConfigError, match="not a certificate and its key"):
        ServerCertificate(ServerTlsFiles(str(cert), str(other_key)))
    with pytest.raises(TlsConfigError, match="cannot read"):
        ServerCertificate(ServerTlsFiles(str(tmp_path / "missing.pem"), str(other_key)))


@pytest.mark.slow  # starts the service
def test_the_service_names_a_bad_certificate_and_exits(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "service", "serve", "--listen", "127.0.0.1:0",
            "--store", f"sqlite:///{tmp_path / 'x.db'}",
            "--tls-cert-file", str(tmp_path / "missing.pem"), "--tls-key-file", "k.pem",
        ],
        capture_output=True, text=True, timeout=60, env=os.environ,
    )  # fmt: skip
    assert result.returncode == 1
    assert "missing.pem" in result.stderr
