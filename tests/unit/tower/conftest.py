"""Fixtures: a fresh fake Tower per test and a client wired to it with tiny backoffs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from nats_tower_operator.tower import TowerClient

from .fakepb import TOKEN, FakeTower


@pytest.fixture
def fake() -> FakeTower:
    return FakeTower()


@pytest.fixture
async def client(fake: FakeTower) -> AsyncIterator[TowerClient]:
    async with TowerClient(
        "http://tower.test",
        TOKEN,
        backoff_base=0.001,
        backoff_cap=0.004,
        transport=fake.transport(),
    ) as c:
        yield c
