"""Optional TLS for the emulator: a throwaway self-signed certificate made with ``openssl``.

Serving HTTPS lets tests exercise a client's real TLS path (a kubeconfig with
``certificate-authority-data``, or the in-cluster service-account layout with ``ca.crt``).
The certificate is valid for ``127.0.0.1``, ``::1`` and ``localhost`` for one day.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerCertificate", "make_certificate"]


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A certificate/key pair on disk; the certificate is its own CA."""

    directory: Path
    cert_file: Path
    key_file: Path

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM form (what clients trust as the CA)."""
        return self.cert_file.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for the server side."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def remove(self) -> None:
        """Delete the files."""
        shutil.rmtree(self.directory, ignore_errors=True)


async def make_certificate() -> ServerCertificate:
    """Create a self-signed certificate in a new temporary directory."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("TLS for the emulator needs the openssl command, which is not installed")
    directory = Path(tempfile.mkdtemp(prefix="kube-emulator-tls-"))
    cert, key = directory / "tls.crt", directory / "tls.key"
    proc = await asyncio.create_subprocess_exec(
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=kube-emulator",
        "-addext",
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"openssl failed to create a certificate: {err.decode().strip()}")
    return ServerCertificate(directory, cert, key)
