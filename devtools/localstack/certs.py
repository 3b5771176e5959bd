"""Throwaway TLS material for the local stack: a CA, a server and a client certificate.

Made with the ``openssl`` command (Debian package ``openssl``), valid for two days, for
127.0.0.1 and localhost only. Keys are unencrypted PKCS#8 PEM files, which both Kafka's
PEM keystores and Redis read directly.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.localstack.tools import StackError, ensure_program

__all__ = ["Certificates", "make_certificates"]

_DAYS = "2"


@dataclass(frozen=True, slots=True)
class Certificates:
    """Paths of the generated PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @property
    def server_keystore(self) -> Path:
        """The server key, its certificate and the CA in one file (a Kafka PEM keystore)."""
        return self.server_key.with_name("server-keystore.pem")


def make_certificates(folder: Path) -> Certificates:
    """Create a CA and a server and client certificate signed by it in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl = ensure_program("openssl")
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    _run(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", _DAYS,
         "-keyout", ca_key, "-out", ca, "-subj", "/CN=engagement-stream test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    certs = Certificates(
        ca=ca,
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )
    _signed(openssl, folder, "server", "127.0.0.1", "serverAuth", ca, ca_key)
    _signed(openssl, folder, "client", "engagement-client", "clientAuth", ca, ca_key)
    certs.server_keystore.write_text(
        certs.server_key.read_text() + certs.server_cert.read_text() + ca.read_text()
    )
    return certs


def _signed(
    openssl: str, folder: Path, name: str, common_name: str, usage: str, ca: Path, ca_key: Path
) -> None:
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    extensions = folder / f"{name}.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _run(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
         "-subj", f"/CN={common_name}")  # fmt: skip
    _run(openssl, "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-days", _DAYS, "-extfile", extensions, "-out", cert)  # fmt: skip


def _run(*command: str | Path) -> None:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(f"openssl failed: {' '.join(map(str, command[:3]))}\n{result.stderr}")
