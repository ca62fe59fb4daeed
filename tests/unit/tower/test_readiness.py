"""TowerReadiness: positive proof, one Tower round per refresh however many ask at once."""

from __future__ import annotations

import asyncio
from typing import Any

from nats_tower_operator.tower import InstallationNotFound, TowerUnavailable
from nats_tower_operator.tower.readiness import TowerReadiness

KEY = "O" + "A" * 55


class FakeTower:
    def __init__(self, *, works: bool = True, known: bool = True) -> None:
        self.works, self.known = works, known
        self.probes = 0
        self.release = asyncio.Event()
        self.release.set()

    async def token_works(self) -> bool:
        self.probes += 1
        await self.release.wait()
        return self.works

    async def get_installation(self, key: str) -> Any:
        if not self.known:
            raise InstallationNotFound(key)
        return object()


def readiness(tower: FakeTower, now: list[float]) -> TowerReadiness:
    return TowerReadiness(tower, [KEY], interval=15.0, clock=lambda: now[0])  # type: ignore[arg-type]


async def test_concurrent_refreshes_share_one_answer() -> None:
    tower, now = FakeTower(), [100.0]
    ready = readiness(tower, now)
    tower.release.clear()
    first = asyncio.create_task(ready.refresh())
    second = asyncio.create_task(ready.refresh())
    await asyncio.sleep(0)
    now[0] += 0.5  # the first one finishes after the second one asked
    tower.release.set()
    assert await first == await second == (True, "")
    assert tower.probes == 1


async def test_the_answer_is_kept_for_the_interval_then_asked_again() -> None:
    tower, now = FakeTower(), [100.0]
    ready = readiness(tower, now)
    assert await ready() == (True, "")
    now[0] += 14.9
    assert await ready() == (True, "")
    assert tower.probes == 1
    now[0] += 0.2
    await ready()
    assert tower.probes == 2


async def test_a_refused_token_and_an_unknown_installation_are_named() -> None:
    ok, why = await readiness(FakeTower(works=False), [0.0]).refresh()
    assert not ok and "refused the API token" in why
    ok, why = await readiness(FakeTower(known=False), [0.0]).refresh()
    assert not ok and KEY in why and "does not exist" in why


async def test_an_unreachable_tower_is_not_ready() -> None:
    class Down(FakeTower):
        async def token_works(self) -> bool:
            raise TowerUnavailable("GET nats_auth_operators failed: ConnectError")

    ok, why = await readiness(Down(), [0.0]).refresh()
    assert not ok and why.startswith("NATS Tower is not answering")
