"""The Tower client against the real PocketBase (the NATS Tower stand-in).

One stand-in per test module (its loop is the module's); every test makes its own
installation, so tests never see each other's records. ``FaultTransport`` wraps the real
HTTP transport to play a second replica or a lost answer at an exact moment.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from nats_tower_operator.tower import CredentialSpec, TowerClient
from nats_tower_operator.towerserver.standin import TowerStandIn

TOKEN = "tower-client-test-token-7"
CLUSTER = "cluster-1"

OPERATORS = "nats_auth_operators"
ACCOUNTS = "nats_auth_accounts"
USERS = "nats_auth_users"
ROLES = "nats_auth_signing_keys"
ACCESS = "nats_auth_k8s_access"

Record = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tower(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TowerStandIn]:
    """A stand-in shared by the tests of one module."""
    async with TowerStandIn.running(
        data_dir=tmp_path_factory.mktemp("tower"), token=TOKEN
    ) as standin:
        yield standin


async def fresh_tower(tmp_path: Path, token: str = TOKEN) -> TowerStandIn:
    """A started stand-in of one's own (stop it); for tests that change the whole server."""
    standin = TowerStandIn(data_dir=tmp_path / "own-tower", token=token)
    await standin.start()
    return standin


Hook = Callable[[httpx.Request], Awaitable[None]]


@dataclass
class Fault:
    """Something to do around one matching request."""

    method: str
    collection: str
    before: Hook | None = None  # awaited before the request is sent
    lose_answer: bool = False  # the server processes it, the client gets a ReadTimeout
    times: int = 1


class FaultTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, with faults injected around matching requests."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.faults: list[Fault] = []
        self.sent: list[tuple[str, str]] = []

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def _take(self, method: str, collection: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and (fault.method, fault.collection) == (method, collection):
                fault.times -= 1
                return fault
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        collection = parts[2] if len(parts) > 2 else ""
        self.sent.append((request.method, collection))
        fault = self._take(request.method, collection)
        if fault is not None and fault.before is not None:
            await fault.before(request)
        response = await self._inner.handle_async_request(request)
        if fault is not None and fault.lose_answer:
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class World:
    """An installation of its own with an account ``orders`` linked to CLUSTER/team-a."""

    tower: TowerStandIn
    inst: Record
    acct: Record
    made: list[Record] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.inst["public_key"])

    def spec(self, user: str, *, namespace: str = "team-a", **over: Any) -> CredentialSpec:
        fields: dict[str, Any] = {
            "installation": self.key,
            "account": "orders",
            "namespace": namespace,
            "user_name": user,
            "description": f"secret {user}",
        }
        fields.update(over)
        return CredentialSpec(**fields)

    async def user(self, name: str, *, account: Record | None = None, role: str = "") -> Record:
        """Create a user directly (as an admin, or another replica, would)."""
        body: Record = {"account": (account or self.acct)["id"], "name": name}
        if role:
            body["signing_key"] = (await self.tower.admin.role(self.key, "orders", role))["id"]
        return await self.tower.admin.create(USERS, body)

    async def role(self, name: str, publish: list[str], subscribe: list[str]) -> Record:
        return await self.tower.admin.create_role(
            self.key, "orders", name, publish=publish, subscribe=subscribe
        )

    async def link(self, namespace: str, cluster: str = CLUSTER) -> Record:
        return await self.tower.admin.link(self.key, "orders", cluster=cluster, namespace=namespace)

    async def users(self) -> list[Record]:
        return await self.tower.admin.list(USERS, f"account = '{self.acct['id']}'")

    async def roles(self) -> list[Record]:
        return await self.tower.admin.list(ROLES, f"account = '{self.acct['id']}'")


def unique_url() -> str:
    """A unique NATS URL nobody listens on (Tower requires unique urls).

    A loopback address with port 1 refuses at once: the stand-in's account pushes fail
    fast, with no DNS lookup to wait for when the test's loop shuts down.
    """
    a, b, c = secrets.token_bytes(3)
    return f"nats://127.{a}.{b}.{max(c, 1)}:1"


async def make_world(tower: TowerStandIn) -> World:
    """A new installation (unique url), account ``orders`` and the team-a link."""
    inst = await tower.admin.create_installation(f"{unique_url()}, nats://127.0.0.1:1")
    acct = await tower.admin.create_account(inst["public_key"], "orders")
    world = World(tower=tower, inst=inst, acct=acct)
    await world.link("team-a")
    return world


@pytest_asyncio.fixture(loop_scope="module")
async def world(tower: TowerStandIn) -> World:
    return await make_world(tower)


@pytest.fixture
def faults() -> FaultTransport:
    return FaultTransport()


@pytest_asyncio.fixture(loop_scope="module")
async def client(tower: TowerStandIn, faults: FaultTransport) -> AsyncIterator[TowerClient]:
    """A client of ``tower`` with the right token, through ``faults``."""
    async with TowerClient(
        tower.url, TOKEN, backoff_base=0.01, backoff_cap=0.05, transport=faults
    ) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="module")
async def wrong(tower: TowerStandIn) -> AsyncIterator[TowerClient]:
    """A client of ``tower`` with a wrong token."""
    async with TowerClient(tower.url, "not-" + TOKEN, backoff_base=0.01) as c:
        yield c
