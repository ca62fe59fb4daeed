"""The emulator as one object: store + controllers + HTTP server, started in-process.

::

    async with Emulator.running() as emu:
        kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
        emu.register_crd(load_nack_accounts_crd())
        emu.faults.fail_next(2, status=429)
        ...
        assert ("", "secrets", "create") in emu.audit.permissions()
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from nats_tower_operator.emulator.app import ServerSettings, build_app
from nats_tower_operator.emulator.audit import AuditLog
from nats_tower_operator.emulator.auth import AccessControl
from nats_tower_operator.emulator.crd import CrdController
from nats_tower_operator.emulator.faults import Faults
from nats_tower_operator.emulator.gc import GarbageCollector, NamespaceController
from nats_tower_operator.emulator.jsonutil import JsonObj
from nats_tower_operator.emulator.store import Store
from nats_tower_operator.emulator.tls import ServerCertificate, make_certificate

__all__ = ["Emulator"]

DEFAULT_TOKEN = "emulator-token"


class Emulator:
    """An in-process Kubernetes API server subset (see the package docstring)."""

    def __init__(
        self,
        *,
        event_window: int = 10_000,
        bookmark_interval: float = 60.0,
        watch_timeout: float = 1800.0,
        tokens: Mapping[str, str] | None = None,
        tls: bool = False,
    ) -> None:
        self.store = Store(window=event_window)
        self.crds = CrdController(self.store)
        self.gc = GarbageCollector(self.store)
        self.namespaces = NamespaceController(self.store)
        self.faults = Faults(self.store)
        self.audit = AuditLog()
        self.access = AccessControl(tokens=tokens)
        self.settings = ServerSettings(
            bookmark_interval=bookmark_interval, watch_timeout=watch_timeout
        )
        self.app = build_app(
            store=self.store,
            faults=self.faults,
            audit=self.audit,
            access=self.access,
            settings=self.settings,
        )
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._tls = tls
        self.certificate: ServerCertificate | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> AsyncIterator[Emulator]:
        """Start an emulator on ``host:port`` (0: any free port) for the ``async with`` body."""
        emu = cls(**options)
        await emu.start(host=host, port=port)
        try:
            yield emu
        finally:
            await emu.stop()

    async def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve HTTP (HTTPS with ``tls=True``) on ``host:port``."""
        if self._tls and self.certificate is None:
            self.certificate = await make_certificate()
        context = self.certificate.server_context() if self.certificate else None
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=context)
        await site.start()
        self._runner = runner
        self._host = host
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else port

    async def stop(self) -> None:
        """Close watch streams and stop serving."""
        self.store.hub.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.certificate is not None:
            self.certificate.remove()
            self.certificate = None

    @property
    def port(self) -> int:
        """The TCP port being served."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (``https`` with ``tls=True``)."""
        scheme = "https" if self._tls else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The PEM certificate clients must trust (None without TLS)."""
        return self.certificate.cert_pem if self.certificate else None

    def write_kubeconfig(
        self,
        path: str | Path,
        *,
        namespace: str = "default",
        token: str = DEFAULT_TOKEN,
        context: str = "emulator",
    ) -> Path:
        """Write a kubeconfig pointing at this emulator and return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = kubeconfig(self.url, namespace=namespace, token=token, context=context)
        if self.ca_pem is not None:
            ca = base64.b64encode(self.ca_pem).decode()
            doc["clusters"][0]["cluster"]["certificate-authority-data"] = ca
        target.write_text(yaml.safe_dump(doc))
        return target

    def write_service_account(
        self, directory: str | Path, *, token: str = DEFAULT_TOKEN, namespace: str = "default"
    ) -> Path:
        """Write the in-cluster service-account files (``token``, ``namespace``, ``ca.crt``).

        With ``KUBERNETES_SERVICE_HOST=127.0.0.1`` and ``KUBERNETES_SERVICE_PORT=`` :attr:`port`
        this reproduces what a pod sees; ``ca.crt`` is only written with ``tls=True``.
        """
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        (target / "token").write_text(token)
        (target / "namespace").write_text(namespace)
        if self.ca_pem is not None:
            (target / "ca.crt").write_bytes(self.ca_pem)
        return target

    def register_crd(self, manifest: JsonObj) -> JsonObj:
        """Create (or replace) a CustomResourceDefinition and start serving its resource."""
        return self.crds.register(manifest)


def kubeconfig(server: str, *, namespace: str, token: str, context: str) -> JsonObj:
    """A kubeconfig document for ``server`` with a bearer token user."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
