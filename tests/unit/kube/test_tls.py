"""TLS end to end over loopback: kubeconfig CA data + client certificate data, real handshake."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from nats_tower_operator.kube import (
    SECRETS,
    KubeClient,
    KubeConfig,
    KubeConnectionError,
    RetryPolicy,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


NEWKEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-x509", *NEWKEY, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=test-ca", cwd=d)  # fmt: skip
    for name, cn in (("server", "127.0.0.1"), ("client", "operator")):
        _openssl("req", *NEWKEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=d)  # fmt: skip
        extra = ["-extfile", "san.cnf"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)  # fmt: skip
    return d


async def _serve(pki: Path) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        return web.json_response({"metadata": {"name": "x"}, "cn": subject.get("commonName")})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/secrets/x", handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


def _kubeconfig(path: Path, pki: Path, port: int, *, ca: Path) -> Path:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [
            {
                "name": "k",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": b64(ca),
                },
            }
        ],
        "users": [
            {
                "name": "u",
                "user": {
                    "client-certificate-data": b64(pki / "client.crt"),
                    "client-key-data": b64(pki / "client.key"),
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_mutual_tls_from_inline_kubeconfig_data(pki: Path, tmp_path: Path) -> None:
    runner, port = await _serve(pki)
    try:
        cfg = KubeConfig.from_kubeconfig(
            str(_kubeconfig(tmp_path / "kc", pki, port, ca=pki / "ca.crt"))
        )
        async with KubeClient(cfg) as client:
            got = await client.get(SECRETS, "x", namespace="default")
        assert got["cn"] == "operator"

        # A CA that did not sign the server certificate must fail the handshake.
        wrong = _kubeconfig(tmp_path / "kc2", pki, port, ca=pki / "client.crt")
        cfg2 = KubeConfig.from_kubeconfig(str(wrong))
        async with KubeClient(cfg2, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(KubeConnectionError):
                await client.get(SECRETS, "x", namespace="default")
    finally:
        await runner.cleanup()
