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
        """Serve HTTP on ``host:port``."""
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
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

    @property
    def port(self) -> int:
        """The TCP port being served."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self._host}:{self._port}"

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
        target.write_text(
            yaml.safe_dump(kubeconfig(self.url, namespace=namespace, token=token, context=context))
        )
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
