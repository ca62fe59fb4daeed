"""Running informers under the manager, and starting controllers only once they synced.

A controller must never decide from a half-filled cache ("this Secret has no consumers"),
so :class:`SyncedController` starts its workers only after every informer it reads has
listed once. Adding a controller is one call: :func:`add_controller`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from nats_tower_operator.kube import Informer
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.manager import Manager

__all__ = ["InformerRunnable", "SyncedController", "add_controller", "add_informers"]

log = logging.getLogger(__name__)


class InformerRunnable:
    """Runs an informer until the manager stops (on every replica: caches stay warm)."""

    def __init__(self, informer: Informer) -> None:
        self._informer = informer

    @property
    def name(self) -> str:
        """``informer/<resource>``."""
        return f"informer/{self._informer.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Run the informer until ``stop``."""
        task = asyncio.create_task(self._informer.run(), name=self.name)
        try:
            await stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class SyncedController:
    """Starts a controller's workers only after every informer it reads has synced."""

    def __init__(self, controller: Controller, informers: Sequence[Informer]) -> None:
        self._controller = controller
        self._informers = tuple(informers)

    @property
    def name(self) -> str:
        """``controller/<name>``."""
        return f"controller/{self._controller.name}"

    async def _all_synced(self) -> None:
        for informer in self._informers:
            await informer.wait_synced()

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the caches (or ``stop``), then run the workers until ``stop``."""
        waiting = asyncio.create_task(self._all_synced())
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stopped in done:
            waiting.cancel()
            return
        stopped.cancel()
        log.info("caches synced; starting workers", extra={"controller": self._controller.name})
        await self._controller.run(stop)


def add_informers(manager: Manager, informers: Sequence[Informer]) -> None:
    """Run ``informers`` on every replica (followers keep their caches warm)."""
    for informer in informers:
        manager.add(InformerRunnable(informer), needs_leader=False)


def add_controller(manager: Manager, controller: Controller, reads: Sequence[Informer]) -> None:
    """Run ``controller`` on the leader, once the informers it ``reads`` have synced."""
    manager.add(SyncedController(controller, reads))
