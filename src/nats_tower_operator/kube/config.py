"""Where the API server is and how to authenticate: kubeconfig, in-cluster, or auto-detected."""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import hashlib
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KubeConfig", "KubeConfigError"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class KubeConfigError(Exception):
    """The Kubernetes connection settings are missing or unusable (one-line message)."""


_temp_files: dict[str, str] = {}


def _remove_temp_files() -> None:
    for path in _temp_files.values():
        with contextlib.suppress(OSError):
            os.unlink(path)
    _temp_files.clear()


atexit.register(_remove_temp_files)


def _data_file(data: bytes, suffix: str) -> str:
    """Write inline kubeconfig data to a private (0600) temp file, once per distinct content."""
    digest = hashlib.sha256(data).hexdigest()
    existing = _temp_files.get(digest)
    if existing is not None and os.path.exists(existing):
        return existing
    fd, path = tempfile.mkstemp(prefix="kube-", suffix=suffix)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    _temp_files[digest] = path
    return path


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise KubeConfigError(f"kubeconfig field {what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise KubeConfigError(f"kubeconfig field {what} is not valid base64") from None


def _named(entries: Any, name: str, what: str, source: str) -> Mapping[str, Any]:
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                body = entry.get(what)
                return body if isinstance(body, Mapping) else {}
    raise KubeConfigError(f"{source}: {what} {name!r} not found")


def _kubeconfig_candidates() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


@dataclass(frozen=True, slots=True)
class KubeConfig:
    """Connection settings for one API server; build it with a named constructor."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = field(default=None, repr=False)
    client_cert_file: str | None = None
    client_key_file: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> KubeConfig:
        """Load a kubeconfig file (default: first existing ``$KUBECONFIG`` entry or ~/.kube/config).

        Inline ``*-data`` credentials are kept in memory (CA) or written to private temp
        files (client certificate and key); relative file paths are resolved against the
        kubeconfig's directory, as kubectl does.
        """
        if path is None:
            found = next((p for p in _kubeconfig_candidates() if p.is_file()), None)
            if found is None:
                raise KubeConfigError("no kubeconfig file found ($KUBECONFIG or ~/.kube/config)")
            file = found
        else:
            file = Path(path).expanduser()
        source = str(file)
        try:
            doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KubeConfigError(f"cannot read kubeconfig {source}: {exc.strerror}") from None
        except yaml.YAMLError:
            raise KubeConfigError(f"kubeconfig {source} is not valid YAML") from None
        if not isinstance(doc, Mapping):
            raise KubeConfigError(f"kubeconfig {source} is empty or not a mapping")
        return cls._from_document(doc, file.parent, context, source)

    @classmethod
    def _from_document(  # noqa: C901 - one branch per kubeconfig auth method
        cls, doc: Mapping[str, Any], base: Path, context: str | None, source: str
    ) -> KubeConfig:
        context_name = context or doc.get("current-context")
        if not context_name:
            raise KubeConfigError(f"{source}: no context given and no current-context set")
        ctx = _named(doc.get("contexts"), str(context_name), "context", source)
        cluster_name = ctx.get("cluster")
        if not cluster_name:
            raise KubeConfigError(f"{source}: context {context_name!r} names no cluster")
        cluster = _named(doc.get("clusters"), str(cluster_name), "cluster", source)
        user_name = ctx.get("user")
        user = _named(doc.get("users"), str(user_name), "user", source) if user_name else {}

        server = cluster.get("server")
        if not isinstance(server, str) or not server:
            raise KubeConfigError(f"{source}: cluster {cluster_name!r} has no server")

        def file_path(value: Any) -> str | None:
            if not value:
                return None
            p = Path(str(value)).expanduser()
            return str(p if p.is_absolute() else base / p)

        ca_data = None
        if cluster.get("certificate-authority-data"):
            ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data")
        cert_file = file_path(user.get("client-certificate"))
        if user.get("client-certificate-data"):
            cert = _b64(user["client-certificate-data"], "client-certificate-data")
            cert_file = _data_file(cert, ".crt")
        key_file = file_path(user.get("client-key"))
        if user.get("client-key-data"):
            key_file = _data_file(_b64(user["client-key-data"], "client-key-data"), ".key")
        if bool(cert_file) != bool(key_file):
            raise KubeConfigError(f"{source}: user {user_name!r} needs both a client cert and key")
        token = user.get("token")
        token_file = file_path(user.get("tokenFile"))
        if not (token or token_file or cert_file) and ("exec" in user or "auth-provider" in user):
            raise KubeConfigError(
                f"{source}: user {user_name!r} uses exec/auth-provider credentials, "
                "which are not supported; use a token or client certificate"
            )
        namespace = ctx.get("namespace")
        return cls(
            server=server.rstrip("/"),
            ca_file=None if ca_data else file_path(cluster.get("certificate-authority")),
            ca_data=ca_data,
            client_cert_file=cert_file,
            client_key_file=key_file,
            token=str(token) if token else None,
            token_file=token_file,
            insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
            namespace=str(namespace) if namespace else None,
        )

    @classmethod
    def in_cluster(
        cls,
        *,
        token_path: str = f"{SERVICE_ACCOUNT_DIR}/token",
        ca_path: str = f"{SERVICE_ACCOUNT_DIR}/ca.crt",
        namespace_path: str = f"{SERVICE_ACCOUNT_DIR}/namespace",
    ) -> KubeConfig:
        """The pod's service account: ``KUBERNETES_SERVICE_HOST/PORT`` and the mounted token.

        The token is referenced by path, so the client re-reads it when kubelet rotates it.
        """
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise KubeConfigError(
                "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set"
            )
        if not os.path.isfile(token_path):
            raise KubeConfigError(f"service account token {token_path} does not exist")
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        namespace = None
        with contextlib.suppress(OSError):
            namespace = Path(namespace_path).read_text(encoding="utf-8").strip() or None
        return cls(
            server=f"https://{host}:{port}",
            ca_file=ca_path if os.path.isfile(ca_path) else None,
            token_file=token_path,
            namespace=namespace,
        )

    @classmethod
    def load(cls) -> KubeConfig:
        """Auto-detect: a kubeconfig if one exists, else the in-cluster service account."""
        if any(p.is_file() for p in _kubeconfig_candidates()):
            return cls.from_kubeconfig()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return cls.in_cluster()
        raise KubeConfigError(
            "no Kubernetes configuration: set KUBECONFIG, create ~/.kube/config, "
            "or run in a pod with a service account"
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS verification setting for httpx (``False`` when verification is skipped)."""
        if not self.server.startswith("https://"):
            return True
        if self.insecure_skip_tls_verify:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            cadata = self.ca_data.decode("ascii", errors="replace") if self.ca_data else None
            try:
                ctx = ssl.create_default_context(cafile=self.ca_file, cadata=cadata)
            except (OSError, ssl.SSLError) as exc:
                raise KubeConfigError(f"cannot load the cluster CA: {exc}") from None
        if self.client_cert_file and self.client_key_file:
            try:
                ctx.load_cert_chain(self.client_cert_file, self.client_key_file)
            except (OSError, ssl.SSLError) as exc:
                raise KubeConfigError(f"cannot load the client certificate: {exc}") from None
        return ctx
