"""Loading connection settings: kubeconfig files, in-cluster service account, auto-detect."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from nats_tower_operator.kube import KubeConfig, KubeConfigError


def _write_kubeconfig(path: Path, *, user: dict[str, Any], cluster: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "contexts": [
            {"name": "main", "context": {"cluster": "c1", "user": "u1", "namespace": "team"}},
            {"name": "other", "context": {"cluster": "c2", "user": "u2"}},
        ],
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://one.example:6443/", **cluster}},
            {"name": "c2", "cluster": {"server": "http://two.example"}},
        ],
        "users": [{"name": "u1", "user": user}, {"name": "u2", "user": {"token": "second"}}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_token_and_context_selection(tmp_path: Path) -> None:
    path = _write_kubeconfig(
        tmp_path / "config", user={"token": "abc"}, cluster={"insecure-skip-tls-verify": True}
    )
    cfg = KubeConfig.from_kubeconfig(str(path))
    assert cfg.server == "https://one.example:6443"
    assert cfg.token == "abc" and cfg.namespace == "team" and cfg.insecure_skip_tls_verify
    assert "abc" not in repr(cfg)
    other = KubeConfig.from_kubeconfig(str(path), context="other")
    assert (other.server, other.token, other.namespace) == ("http://two.example", "second", None)
    with pytest.raises(KubeConfigError, match="context 'nope' not found"):
        KubeConfig.from_kubeconfig(str(path), context="nope")


def test_inline_data_goes_to_private_files_and_paths_are_relative(tmp_path: Path) -> None:
    path = _write_kubeconfig(
        tmp_path / "config",
        user={
            "client-certificate-data": base64.b64encode(b"CERT").decode(),
            "client-key-data": base64.b64encode(b"KEY").decode(),
            "tokenFile": "tok",
        },
        cluster={"certificate-authority-data": base64.b64encode(b"CA PEM").decode()},
    )
    cfg = KubeConfig.from_kubeconfig(str(path))
    assert cfg.ca_data == b"CA PEM" and cfg.ca_file is None
    assert cfg.client_cert_file and cfg.client_key_file
    assert Path(cfg.client_cert_file).read_bytes() == b"CERT"
    assert Path(cfg.client_key_file).read_bytes() == b"KEY"
    assert stat.S_IMODE(os.stat(cfg.client_key_file).st_mode) == 0o600
    assert cfg.token_file == str(tmp_path / "tok")

    files = _write_kubeconfig(
        tmp_path / "config2",
        user={"client-certificate": "/abs/c.crt", "client-key": "k.key"},
        cluster={"certificate-authority": "ca.crt"},
    )
    cfg2 = KubeConfig.from_kubeconfig(str(files))
    assert cfg2.ca_file == str(tmp_path / "ca.crt")
    assert cfg2.client_cert_file == "/abs/c.crt"
    assert cfg2.client_key_file == str(tmp_path / "k.key")


def test_broken_kubeconfigs_give_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("{not yaml")
    with pytest.raises(KubeConfigError, match="not valid YAML"):
        KubeConfig.from_kubeconfig(str(bad))
    exec_user = _write_kubeconfig(tmp_path / "exec", user={"exec": {"command": "aws"}}, cluster={})
    with pytest.raises(KubeConfigError, match="exec/auth-provider"):
        KubeConfig.from_kubeconfig(str(exec_user))
    half = _write_kubeconfig(tmp_path / "half", user={"client-certificate": "c"}, cluster={})
    with pytest.raises(KubeConfigError, match="both a client cert and key"):
        KubeConfig.from_kubeconfig(str(half))
    with pytest.raises(KubeConfigError, match="cannot read kubeconfig"):
        KubeConfig.from_kubeconfig(str(tmp_path / "missing"))


def test_kubeconfig_env_first_existing_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _write_kubeconfig(tmp_path / "real", user={"token": "fromenv"}, cluster={})
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}{os.pathsep}{real}")
    assert KubeConfig.from_kubeconfig().token == "fromenv"
    assert KubeConfig.load().token == "fromenv"


def _service_account(tmp_path: Path) -> dict[str, str]:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("satoken\n")
    (sa / "ca.crt").write_text("CA")
    (sa / "namespace").write_text("ops\n")
    return {
        "token_path": str(sa / "token"),
        "ca_path": str(sa / "ca.crt"),
        "namespace_path": str(sa / "namespace"),
    }


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _service_account(tmp_path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError, match="not running in a cluster"):
        KubeConfig.in_cluster(**paths)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = KubeConfig.in_cluster(**paths)
    assert cfg.server == "https://[fd00::1]:443"
    assert cfg.token is None and cfg.token_file == paths["token_path"]
    assert cfg.ca_file == paths["ca_path"] and cfg.namespace == "ops"
    with pytest.raises(KubeConfigError, match="token"):
        KubeConfig.in_cluster(**{**paths, "token_path": str(tmp_path / "nope")})


def test_load_without_anything_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError) as info:
        KubeConfig.load()
    assert "\n" not in str(info.value) and "KUBECONFIG" in str(info.value)
    (tmp_path / ".kube").mkdir()
    _write_kubeconfig(tmp_path / ".kube" / "config", user={"token": "home"}, cluster={})
    assert KubeConfig.load().token == "home"
