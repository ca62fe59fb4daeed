"""Fixtures for the Tower-compatible server tests: a running server, an HTTP client, nats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nats_tower_operator.towerserver.natsserver import NatsServer
from nats_tower_operator.towerserver.server import TowerServer

TOKEN = "test-token-0123456789"


@pytest.fixture
async def tower(tmp_path: Path) -> AsyncIterator[TowerServer]:
    """A Tower-compatible server on a free loopback port with a fresh database."""
    async with TowerServer.running(db_path=tmp_path / "tower.db", token=TOKEN) as srv:
        yield srv


@pytest.fixture
async def client(tower: TowerServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``tower`` that sends the right X-Token."""
    async with httpx.AsyncClient(base_url=tower.url, headers={"X-Token": TOKEN}) as c:
        yield c


@dataclass
class Installation:
    """An installation with its own real nats-server."""

    tower: TowerServer
    operator: dict[str, Any]
    nats: NatsServer


@pytest.fixture
async def installation(tower: TowerServer, tmp_path: Path) -> Installation:
    """An installation whose nats-server runs (started from the generated config)."""
    operator = await tower.create_installation("test-installation")
    nats = await tower.start_nats(operator["id"], workdir=tmp_path / "nats")
    return Installation(tower=tower, operator=operator, nats=nats)
