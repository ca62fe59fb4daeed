"""The NATS Tower stand-in: the real PocketBase serving NATS Tower's collections and rules.

:class:`TowerStandIn` starts, in order: the push queue and the signing service (this
process, loopback only), then ``pocketbase serve`` with the stand-in's JS hooks, then
imports Tower's collections for the API token as PocketBase's superuser. Everything a
client sees (records API, filters, paging, errors, rules) is PocketBase's own.

Typical use in tests and the sandbox::

    async with TowerStandIn.running(data_dir=tmp / "tower", token="t") as tower:
        inst = await tower.admin.create_installation("nats://placeholder.invalid:4222")
        nats = await tower.start_nats(inst["public_key"], workdir=tmp / "nats")
        await tower.admin.create_account(inst["public_key"], "app")
        await tower.admin.link(inst["public_key"], "app", cluster="c1", namespace="default")
        # clients talk to tower.url with the header X-Token: t
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from nats_tower_operator.towerserver.admin import TowerAdmin
from nats_tower_operator.towerserver.collections import OPERATORS, collections
from nats_tower_operator.towerserver.natsconfig import render_config
from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.pocketbase import PocketBase, PocketBaseError
from nats_tower_operator.towerserver.push import PushQueue
from nats_tower_operator.towerserver.signer import Signer, build_app, new_key

__all__ = ["HOOKS_DIR", "Superuser", "TowerStandIn"]

HOOKS_DIR = Path(__file__).parent / "pb_hooks"


@dataclass(frozen=True)
class Superuser:
    """PocketBase's admin account (for the admin UI at ``<url>/_/``)."""

    email: str
    password: str

    def __repr__(self) -> str:
        return f"Superuser(email={self.email!r})"


class TowerStandIn:
    """A running NATS Tower stand-in with an admin client (``admin``)."""

    def __init__(
        self,
        *,
        data_dir: Path,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        superuser: Superuser | None = None,
        push_retry_interval: float = 2.0,
    ) -> None:
        self.data_dir = data_dir
        self.token = token
        self.superuser = superuser or Superuser("admin@tower.local", secrets.token_hex(12))
        self.pushes = PushQueue(retry_interval=push_retry_interval)
        self._signer_key = new_key()
        self._signer_runner: web.AppRunner | None = None
        self._signer_url = ""
        self._host = host
        self._port = port
        self._pocketbase: PocketBase | None = None
        self._nats: list[NatsServer] = []
        self._admin: TowerAdmin | None = None

    @classmethod
    @asynccontextmanager
    async def running(cls, **options: Any) -> AsyncIterator[TowerStandIn]:
        """Start a stand-in with :meth:`__init__`'s options; stop it (and its nats-servers)."""
        tower = cls(**options)
        try:
            await tower.start()
            yield tower
        finally:
            await tower.stop()

    @property
    def url(self) -> str:
        """The Tower base URL (PocketBase's)."""
        if self._pocketbase is None:
            raise PocketBaseError("the stand-in is not running")
        return self._pocketbase.url

    @property
    def admin(self) -> TowerAdmin:
        """An X-Token admin client of this Tower."""
        if self._admin is None:
            raise PocketBaseError("the stand-in is not running")
        return self._admin

    @property
    def pocketbase(self) -> PocketBase:
        """The PocketBase process."""
        if self._pocketbase is None:
            raise PocketBaseError("the stand-in is not running")
        return self._pocketbase

    async def start(self) -> None:
        """Start the signer, PocketBase with the hooks, and import Tower's collections."""
        self.pushes.start()
        await self._start_signer()
        self._pocketbase = PocketBase(
            data_dir=self.data_dir,
            hooks_dir=HOOKS_DIR,
            host=self._host,
            port=self._port,
            env={
                "TOWER_STANDIN_SIGNER_URL": self._signer_url,
                "TOWER_STANDIN_SIGNER_KEY": self._signer_key,
            },
        )
        await self._pocketbase.upsert_superuser(self.superuser.email, self.superuser.password)
        await self._pocketbase.start()
        await self._import_collections()
        self._admin = TowerAdmin(self.url, self.token)

    async def _start_signer(self) -> None:
        app = build_app(Signer(self.pushes), key=self._signer_key)
        self._signer_runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._signer_runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        await web.SockSite(self._signer_runner, sock).start()
        self._signer_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _import_collections(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30.0) as client:
            auth = await client.post(
                "/api/collections/_superusers/auth-with-password",
                json={"identity": self.superuser.email, "password": self.superuser.password},
            )
            if auth.status_code != 200:
                raise PocketBaseError(f"superuser login failed: HTTP {auth.status_code}")
            response = await client.put(
                "/api/collections/import",
                json={"collections": collections(self.token), "deleteMissing": False},
                headers={"Authorization": auth.json()["token"]},
            )
            if response.status_code != 204:
                raise PocketBaseError(f"importing Tower's collections failed: {response.text}")

    async def rotate_token(self, token: str) -> None:
        """Make ``token`` Tower's API token (the old one stops working at once), as a
        restart of NATS Tower with a new API_TOKEN does: the rules are re-applied."""
        self.token = token
        await self._import_collections()
        if self._admin is not None:
            await self._admin.aclose()
        self._admin = TowerAdmin(self.url, token)

    async def stop(self) -> None:
        """Stop nats-servers started here, PocketBase, the signer and the push queue."""
        if self._admin is not None:
            await self._admin.aclose()
            self._admin = None
        for nats in reversed(self._nats):
            await nats.stop()
        self._nats.clear()
        if self._pocketbase is not None:
            await self._pocketbase.stop()
            self._pocketbase = None
        if self._signer_runner is not None:
            await self._signer_runner.cleanup()
            self._signer_runner = None
        await self.pushes.close()

    async def wait_pushed(self, timeout: float = 20.0) -> None:
        """Wait until nats-server confirmed every queued account JWT."""
        await self.pushes.wait_idle(timeout)

    async def start_nats(self, installation: str, *, workdir: Path) -> NatsServer:
        """Start a real nats-server for an installation and point the installation at it.

        The server runs until the stand-in stops; account changes are pushed to it.
        """
        inputs = await self.admin.nats_config_inputs(installation)
        text = render_config(inputs, resolver_dir=workdir / "jwt")
        nats = NatsServer(config_text=text, workdir=workdir)
        await nats.start()
        self._nats.append(nats)
        record = await self.admin.installation(installation)
        await self.admin.update(OPERATORS, record["id"], {"url": nats.client_url})
        return nats
