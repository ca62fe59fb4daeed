"""The in-process Tower-compatible server: store + service + nats sync + HTTP, started together.

Typical use in tests and the sandbox::

    async with TowerServer.running(db_path=path, token="t") as srv:
        op = await srv.create_installation("main")
        nats = await srv.start_nats(op["id"], workdir=tmp / "nats")   # real nats-server
        acc = await srv.create_account(op["id"], "app")
        await srv.link_k8s(acc["id"], cluster="c1", namespace="default")
        # REST clients talk to srv.url with header X-Token: t
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from nats_tower_operator.towerserver.app import RequestStats, build_app
from nats_tower_operator.towerserver.model import OPERATORS
from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.natsync import NatsSync, render_config
from nats_tower_operator.towerserver.service import Record, TowerService
from nats_tower_operator.towerserver.store import Store

__all__ = ["TowerServer"]


class TowerServer:
    """A running Tower-compatible server with admin helpers."""

    def __init__(
        self,
        *,
        db_path: str | Path,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        nats_config_dir: Path | None = None,
        push: bool = True,
    ) -> None:
        self._store = Store(db_path)
        self.service = TowerService(self._store)
        self.stats = RequestStats()
        self.sync = NatsSync(self.service, config_dir=nats_config_dir)
        self._token = token
        self._host = host
        self._port = port
        self._push = push
        self._runner: web.AppRunner | None = None
        self._nats: list[NatsServer] = []
        self.url = ""

    @classmethod
    @asynccontextmanager
    async def running(cls, **options: Any) -> AsyncIterator[TowerServer]:
        """Start a server with :meth:`__init__`'s options; stop it (and its nats-servers)."""
        server = cls(**options)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()

    async def start(self) -> None:
        """Open the database, start syncing and serve HTTP."""
        await self._store.open()
        if self._push:
            await self.sync.start()
        app = build_app(self.service, token=self._token, stats=self.stats)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(128)
        sock.setblocking(False)
        site = web.SockSite(self._runner, sock)
        await site.start()
        port = sock.getsockname()[1]
        host = f"[{self._host}]" if family == socket.AF_INET6 else self._host
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop HTTP, the nats-servers started here, syncing and the database."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for nats in reversed(self._nats):
            await nats.stop()
        self._nats.clear()
        await self.sync.close()
        await self._store.close()

    # --- admin helpers ---------------------------------------------------------------------

    async def create_installation(self, name: str, nats_url: str = "") -> Record:
        """Create an installation (operator); the record has its ``public_key``."""
        return await self.service.create_installation(name=name, url=nats_url)

    async def create_account(
        self, installation_id: str, name: str, *, user_jwt_ttl: int = 0
    ) -> Record:
        """Create an account; ``installation_id`` is the operator's id or public key."""
        return await self.service.create_account(
            operator_id=installation_id, name=name, user_jwt_ttl=user_jwt_ttl
        )

    async def create_role(
        self,
        account_id: str,
        role: str,
        *,
        publish: Sequence[str] = (),
        subscribe: Sequence[str] = (),
    ) -> Record:
        """Create a role (scoped signing key) of an account."""
        return await self.service.create_role(
            account_id=account_id, role=role, publish=publish, subscribe=subscribe
        )

    async def create_user(
        self, account_id: str, name: str, *, signing_key_id: str = "", description: str = ""
    ) -> Record:
        """Create a user; the record carries ``creds``."""
        return await self.service.create_user(
            account_id=account_id,
            name=name,
            signing_key_id=signing_key_id,
            description=description,
        )

    async def link_k8s(self, account_id: str, *, cluster: str, namespace: str) -> Record:
        """Allow a Kubernetes namespace of a cluster to use an account."""
        return await self.service.link_k8s(
            account_id=account_id, cluster=cluster, namespace=namespace
        )

    async def unlink(self, account_id: str, *, cluster: str, namespace: str) -> bool:
        """Remove a Kubernetes access link; whether it existed."""
        return await self.service.unlink_k8s(
            account_id=account_id, cluster=cluster, namespace=namespace
        )

    async def nats_config(self, installation_id: str, *, resolver_dir: Path) -> str:
        """The nats-server configuration text of an installation."""
        inputs = await self.service.config_inputs(installation_id)
        return render_config(inputs, resolver_dir=resolver_dir)

    async def start_nats(self, installation_id: str, *, workdir: Path) -> NatsServer:
        """Start a real nats-server for an installation and point the installation at it.

        The server runs until this TowerServer stops; account changes are pushed to it.
        """
        text = await self.nats_config(installation_id, resolver_dir=workdir / "jwt")
        nats = NatsServer(config_text=text, workdir=workdir)
        await nats.start()
        self._nats.append(nats)
        inputs = await self.service.config_inputs(installation_id)
        await self.service.update(OPERATORS, inputs.operator_id, {"url": nats.client_url})
        return nats
