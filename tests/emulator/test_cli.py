"""``nats-tower-operator dev-cluster`` as a separate process, driven by kubectl and HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import yaml

from .conftest import KUBECTL

CLI = Path(sys.executable).parent / "nats-tower-operator"

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


async def test_dev_cluster_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(WIDGET_CRD)
    proc = await asyncio.create_subprocess_exec(
        str(CLI),
        "dev-cluster",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
        "--nack-crd",
        "--crd",
        str(crd_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        assert "kubeconfig written to" in banner
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert server.startswith("http://127.0.0.1:")
        env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
        kubectl = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            "api-resources",
            "--api-group=jetstream.nats.io",
            "-o",
            "name",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(kubectl.communicate(), 30)
        assert out.decode().split() == ["accounts.jetstream.nats.io"], err.decode()
        async with httpx.AsyncClient(base_url=server) as http:
            assert (await http.get("/apis/example.com/v1/widgets")).status_code == 200
            await http.post(
                "/_emulator/faults/fail", json={"count": 1, "status": 429, "retry_after": 2}
            )
            throttled = await http.get("/api/v1/namespaces")
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 15)
    assert code == 0
    rest = (await proc.stdout.read()).decode()
    assert "stopped" in rest


async def test_dev_cluster_reports_a_missing_crd_file(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(CLI),
        "dev-cluster",
        "--kubeconfig",
        str(tmp_path / "kc"),
        "--crd",
        str(tmp_path / "missing.yaml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    assert "cannot read CRD file" in err.decode()


async def test_dev_cluster_with_tls(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        str(CLI),
        "dev-cluster",
        "--tls",
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        assert "serving https://127.0.0.1:" in banner
        env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
        kubectl = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            "get",
            "namespaces",
            "-o",
            "name",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(kubectl.communicate(), 30)
        assert "namespace/default" in out.decode().split(), err.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
