"""Fixtures of the Tower stand-in tests: the real PocketBase with Tower's collections and
hooks, an X-Token HTTP client, and installations backed by a real nats-server.

Helpers shared by the test modules (``wait_until``, ``nats_connect``, ``can_connect``,
``records``) live here too and are imported with ``from .conftest import ...``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from nats.aio.client import Client, RawCredentials

from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.standin import TowerStandIn

TOKEN = "test-token-0123456789"
#: What an installation's url holds until its nats-server runs (Tower requires a unique url).
PLACEHOLDER_URL = "nats://starting.invalid:4222"

OPERATORS = "nats_auth_operators"
LIMITS = "nats_auth_limits"
ACCOUNTS = "nats_auth_accounts"
USERS = "nats_auth_users"
ROLES = "nats_auth_signing_keys"
ACCESS = "nats_auth_k8s_access"

Record = dict[str, Any]


def records(collection: str, record_id: str = "") -> str:
    """The records API path of a collection (or of one record)."""
    path = f"/api/collections/{collection}/records"
    return f"{path}/{record_id}" if record_id else path


async def wait_until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> None:
    """Poll ``check`` (sync or async) until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached within {timeout} s")
        await asyncio.sleep(interval)


async def nats_connect(url: str, creds: str, errors: list[Exception] | None = None) -> Client:
    """Connect to nats-server with a user's creds text; async errors go to ``errors``."""

    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(exc)

    return await nats.connect(
        url,
        user_credentials=RawCredentials(creds),
        error_cb=on_error,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.1,
        connect_timeout=5,
    )


async def can_connect(url: str, creds: str) -> bool:
    """Whether nats-server accepts a connection with ``creds`` right now."""
    try:
        client = await nats_connect(url, creds)
    except (nats.errors.Error, OSError):
        return False
    await client.close()
    return True


@pytest.fixture
async def tower(tmp_path: Path) -> AsyncIterator[TowerStandIn]:
    """A stand-in (PocketBase + hooks + signer) over a fresh data directory."""
    async with TowerStandIn.running(
        data_dir=tmp_path / "tower", token=TOKEN, push_retry_interval=0.2
    ) as standin:
        yield standin


@pytest.fixture
async def client(tower: TowerStandIn) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``tower`` sending the right X-Token."""
    async with httpx.AsyncClient(
        base_url=tower.url, headers={"X-Token": TOKEN}, timeout=10
    ) as http:
        yield http


@dataclass
class Installation:
    """An installation of ``tower`` whose nats-server runs."""

    tower: TowerStandIn
    record: Record
    nats: NatsServer

    @property
    def public_key(self) -> str:
        return str(self.record["public_key"])

    @property
    def url(self) -> str:
        return self.nats.client_url


@pytest.fixture
async def installation(tower: TowerStandIn, tmp_path: Path) -> Installation:
    """An installation created with a placeholder URL, then pointed at its own nats-server."""
    created = await tower.admin.create_installation(PLACEHOLDER_URL, "test installation")
    server = await tower.start_nats(created["public_key"], workdir=tmp_path / "nats")
    record = await tower.admin.installation(created["public_key"])
    assert record["url"] == server.client_url
    return Installation(tower=tower, record=record, nats=server)
