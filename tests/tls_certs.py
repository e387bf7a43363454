"""Certificates a test makes for a Docker engine that listens on TCP with TLS: a CA, a server
certificate for 127.0.0.1 and client certificates, laid out as DOCKER_CERT_PATH expects
(ca.pem, cert.pem, key.pem). Made with the `openssl` command: no Python dependency for tests only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_DAYS = "2"


@dataclass(frozen=True)
class ServerCerts:
    """What dockerd's --tlscacert, --tlscert and --tlskey take."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsCerts:
    server: ServerCerts
    client: Path  # a DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca-key.pem"
    _key(key)
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", _DAYS,
        "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
    )  # fmt: skip
    return cert, key


def _issue(ca: tuple[Path, Path], key: Path, cert: Path, subject: str, extensions: str) -> None:
    _key(key)
    csr = cert.with_suffix(".csr")
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", subject)
    ext = cert.with_suffix(".ext")
    ext.write_text(extensions + "\n")
    ca_cert, ca_key = ca
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", _DAYS, "-extfile", str(ext),
    )  # fmt: skip


def client_certs(ca: tuple[Path, Path], directory: Path) -> Path:
    """A DOCKER_CERT_PATH whose client certificate `ca` signed (ca.pem is that CA too)."""
    directory.mkdir(parents=True, exist_ok=True)
    _issue(ca, directory / "key.pem", directory / "cert.pem", "/CN=imgbuild-test-client",
           "extendedKeyUsage=clientAuth")  # fmt: skip
    (directory / "ca.pem").write_bytes(ca[0].read_bytes())
    return directory


def make_certs(directory: Path) -> TlsCerts:
    """A CA, a server certificate for IP 127.0.0.1 and a client DOCKER_CERT_PATH."""
    ca = make_ca(directory / "ca", "imgbuild-test-ca")
    server = directory / "server"
    server.mkdir(parents=True, exist_ok=True)
    _issue(ca, server / "key.pem", server / "cert.pem", "/CN=127.0.0.1",
           "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")  # fmt: skip
    return TlsCerts(
        server=ServerCerts(ca=ca[0], cert=server / "cert.pem", key=server / "key.pem"),
        client=client_certs(ca, directory / "client"),
    )
