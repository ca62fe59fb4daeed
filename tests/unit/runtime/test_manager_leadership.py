"""A replica that loses leadership stops its leader-only work at once (no drain)."""

from __future__ import annotations

import asyncio

import pytest

from nats_tower_operator.runtime.manager import LeadershipLost, Manager

pytestmark = pytest.mark.usefixtures("virtual_time")


def now() -> float:
    return asyncio.get_running_loop().time()


class Gate:
    """Leads at once, then loses leadership after ``after`` seconds."""

    name = "gate"

    def __init__(self, after: float) -> None:
        self._after = after
        self._leading = asyncio.Event()
        self.lost_at: float | None = None

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    async def wait_leader(self) -> None:
        self._leading.set()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(self._after)
        self._leading.clear()
        self.lost_at = now()
        raise LeadershipLost("lease taken over")


class SlowToStop:
    """Leader-only work that would keep going for a long time after ``stop``."""

    name = "slow"

    def __init__(self) -> None:
        self.cancelled_at: float | None = None
        self.finished_draining = False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await stop.wait()
            await asyncio.sleep(30)  # a long drain
            self.finished_draining = True
        except asyncio.CancelledError:
            self.cancelled_at = now()
            raise


async def test_leadership_lost_cancels_gated_work_without_draining() -> None:
    gate = Gate(after=0.2)
    slow = SlowToStop()
    manager = Manager(leader_gate=gate, shutdown_timeout=20.0)
    manager.add(gate, needs_leader=False)
    manager.add(slow)
    code = await asyncio.wait_for(manager.run_forever(install_signal_handlers=False), 10)
    assert code == 1
    assert slow.cancelled_at is not None and not slow.finished_draining
    assert slow.cancelled_at == gate.lost_at  # at the moment leadership was lost, no drain
