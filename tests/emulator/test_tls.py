"""HTTPS with a throwaway certificate: kubeconfig CA data and the in-cluster file layout."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import yaml

from nats_tower_operator.emulator import Emulator


async def test_https_with_the_written_ca(tmp_path: Path) -> None:
    async with Emulator.running(tls=True) as emu:
        assert emu.url.startswith("https://127.0.0.1:")
        config = yaml.safe_load(emu.write_kubeconfig(tmp_path / "kc").read_text())
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
        sa = emu.write_service_account(tmp_path / "sa", token="sa-token")
        assert (sa / "token").read_text() == "sa-token"
        context = ssl.create_default_context(cafile=str(sa / "ca.crt"))
        async with httpx.AsyncClient(base_url=emu.url, verify=context) as http:
            assert (await http.get("/api/v1/namespaces/default")).status_code == 200
        async with httpx.AsyncClient(base_url=emu.url) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get("/version")
        cert_dir = emu.certificate.directory if emu.certificate else None
    assert cert_dir is not None and not cert_dir.exists()  # removed on stop
