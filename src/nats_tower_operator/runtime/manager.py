"""The manager: starts runnables, gates some behind leadership, and stops them all in order.

Runnables (controllers, caches, HTTP servers, leader election) share one contract:
``async run(stop)`` returns after ``stop`` is set. The manager runs two groups:

* *free* runnables (``needs_leader=False``: caches, the health server, the leader elector) start
  at once;
* *leader* runnables (``needs_leader=True``: controllers) start once the :class:`LeaderGate`
  says this replica leads.

Stopping (a signal, :meth:`Manager.request_stop`, or any runnable crashing) happens in that
order reversed: the leader group is told to stop first and drains, then the free group (so the
elector releases its lease only after the controllers have finished, and the health server
answers until the end). Both phases share one ``shutdown_timeout``; whatever is still running
after it is cancelled. :meth:`Manager.run_forever` returns the process exit code: 0 after a
clean stop, 1 if a runnable crashed or had to be cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from contextlib import suppress
from typing import Protocol

from nats_tower_operator.runtime.checks import Check, CheckRegistry, CheckResult
from nats_tower_operator.runtime.metrics import Metrics

__all__ = ["AlwaysLeader", "LeaderGate", "LeadershipLost", "Manager", "Runnable"]

logger = logging.getLogger(__name__)


class Runnable(Protocol):
    """A long-running component the manager starts and stops."""

    @property
    def name(self) -> str:
        """A short name for logs."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then clean up and return; raise only on failure."""
        ...


class LeadershipLost(Exception):
    """Raised by a leader gate's runnable when this replica lost leadership.

    The manager then cancels all leader-gated work at once (no drain: another replica may
    already be acting) and stops with exit code 1.
    """


class LeaderGate(Protocol):
    """Tells whether this replica may run leader-only work."""

    async def wait_leader(self) -> None:
        """Return once this replica is the leader."""
        ...

    @property
    def is_leader(self) -> bool:
        """True while this replica is the leader."""
        ...


class AlwaysLeader:
    """A gate for a single replica: always the leader."""

    @property
    def is_leader(self) -> bool:
        """Always True."""
        return True

    async def wait_leader(self) -> None:
        """Returns immediately."""
        return None


class Manager:
    """Starts runnables, serves their checks, and stops them all (see the module docstring)."""

    def __init__(
        self,
        *,
        leader_gate: LeaderGate | None = None,
        metrics: Metrics | None = None,
        shutdown_timeout: float = 30.0,
        check_timeout: float = 5.0,
    ) -> None:
        self._gate: LeaderGate = leader_gate if leader_gate is not None else AlwaysLeader()
        self._metrics = metrics
        self._shutdown_timeout = shutdown_timeout
        self._checks = CheckRegistry(timeout=check_timeout)
        self._free: list[Runnable] = []
        self._gated: list[Runnable] = []
        self._free_tasks: list[asyncio.Task[None]] = []
        self._gated_tasks: list[asyncio.Task[None]] = []
        self._crashed: list[str] = []
        self._started = False
        self._live = 0
        self._stop_requested = asyncio.Event()
        self._leader_stop = asyncio.Event()
        self._stop = asyncio.Event()
        self._forcing = False  # a second signal asked to cancel everything
        self._forced = False  # something was cancelled instead of stopping by itself
        self._checks.add_health_check("runnables", lambda: not self._crashed)
        self._checks.add_ready_check("not-stopping", lambda: not self._stop_requested.is_set())

    # -- building ------------------------------------------------------------------------------

    def add(self, runnable: Runnable, *, needs_leader: bool = True) -> None:
        """Add ``runnable``; with ``needs_leader`` it starts only once this replica leads."""
        if self._started:
            raise RuntimeError("add runnables before the manager starts")
        (self._gated if needs_leader else self._free).append(runnable)

    def add_ready_check(self, name: str, check: Check) -> None:
        """Add a readiness check (e.g. caches synced, Tower reachable)."""
        self._checks.add_ready_check(name, check)

    def add_health_check(self, name: str, check: Check) -> None:
        """Add a liveness check."""
        self._checks.add_health_check(name, check)

    # -- observing -----------------------------------------------------------------------------

    async def run_ready_checks(self) -> list[CheckResult]:
        """Run every readiness check (the health server's ``/readyz``)."""
        return await self._checks.run_ready_checks()

    async def run_health_checks(self) -> list[CheckResult]:
        """Run every health check (the health server's ``/healthz``)."""
        return await self._checks.run_health_checks()

    @property
    def crashed(self) -> tuple[str, ...]:
        """Names of the runnables that raised."""
        return tuple(self._crashed)

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop_requested.is_set()

    def request_stop(self) -> None:
        """Begin the graceful stop (idempotent)."""
        if not self._stop_requested.is_set():
            logger.info("manager: stopping")
            self._stop_requested.set()

    # -- running -------------------------------------------------------------------------------

    async def run_forever(self, *, install_signal_handlers: bool = True) -> int:
        """Run until stopped; returns the exit code (0 clean, 1 crash or forced cancel).

        With ``install_signal_handlers``, SIGTERM and SIGINT start the graceful stop and a
        second signal cancels whatever is still running.
        """
        if self._started:
            raise RuntimeError("a manager runs once")
        self._started = True
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        self._live = len(self._free) + len(self._gated)
        if self._live == 0:
            logger.warning("manager: no runnables; waiting for a stop")
        for runnable in self._free:
            self._spawn(runnable, self._stop, self._free_tasks)
        leader = asyncio.create_task(self._lead(), name="manager-leader-group")
        installed = self._install_signals(loop, main) if install_signal_handlers else []
        try:
            await self._stop_requested.wait()
            await self._shut_down(leader)
        except asyncio.CancelledError:
            # A second signal, or our caller cancelling us: cancel every runnable.
            forcing = self._forcing and main is not None
            if forcing:
                logger.error("manager: second signal, cancelling everything")
            self._forced = True
            await self._cancel([leader, *self._gated_tasks, *self._free_tasks])
            if not forcing or main is None:
                raise
            main.uncancel()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if self._metrics is not None:
                self._metrics.set_leader(False)
        code = 1 if self._crashed or self._forced else 0
        logger.info("manager: stopped (exit code %d)", code)
        return code

    def _install_signals(
        self, loop: asyncio.AbstractEventLoop, main: asyncio.Task[object] | None
    ) -> list[signal.Signals]:
        def on_signal(sig: signal.Signals) -> None:
            if not self._stop_requested.is_set():
                logger.info("manager: received %s", sig.name)
                self.request_stop()
            elif main is not None and not self._forcing:
                self._forcing = True
                main.cancel()

        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        return installed

    def _spawn(
        self, runnable: Runnable, stop: asyncio.Event, group: list[asyncio.Task[None]]
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._supervise(runnable, stop), name=runnable.name)
        group.append(task)
        return task

    async def _supervise(self, runnable: Runnable, stop: asyncio.Event) -> None:
        try:
            await runnable.run(stop)
        except asyncio.CancelledError:
            raise
        except LeadershipLost:
            logger.error("manager: leadership lost; stopping leader-only work now")
            self._crashed.append(runnable.name)
            for task in self._gated_tasks:
                task.cancel()
            self.request_stop()
        except Exception:  # a crashed runnable is logged and stops the whole manager
            logger.exception("manager: runnable %s crashed", runnable.name)
            self._crashed.append(runnable.name)
            self.request_stop()
        else:
            if not stop.is_set():
                logger.info("manager: runnable %s finished", runnable.name)
        finally:
            self._finished_one()

    def _finished_one(self) -> None:
        self._live -= 1
        if self._live == 0 and not self._stop_requested.is_set():
            logger.info("manager: every runnable finished")
            self.request_stop()

    async def _lead(self) -> None:
        """Wait for leadership (or a stop), then run the leader group."""
        if not self._gated:
            return
        waiting = asyncio.create_task(self._gate.wait_leader(), name="manager-wait-leader")
        stopping = asyncio.create_task(self._leader_stop.wait(), name="manager-leader-stop")
        try:
            await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not waiting.done():
                waiting.cancel()
                with suppress(asyncio.CancelledError):
                    await waiting
        if waiting.cancelled():
            return  # stopped before we led
        exc = waiting.exception()
        if exc is not None:
            logger.error("manager: waiting for leadership failed", exc_info=exc)
            self._crashed.append("leader-gate")
            self.request_stop()
            return
        logger.info("manager: leading; starting %d runnables", len(self._gated))
        if self._metrics is not None:
            self._metrics.set_leader(True)
        for runnable in self._gated:
            self._spawn(runnable, self._leader_stop, self._gated_tasks)
        await asyncio.wait(self._gated_tasks)

    async def _shut_down(self, leader: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._shutdown_timeout
        self._leader_stop.set()
        await asyncio.wait([leader], timeout=max(0.0, deadline - loop.time()))
        self._stop.set()
        if self._free_tasks:
            await asyncio.wait(self._free_tasks, timeout=max(0.0, deadline - loop.time()))
        pending = [t for t in [leader, *self._gated_tasks, *self._free_tasks] if not t.done()]
        if pending:
            names = sorted({t.get_name() for t in pending})
            logger.error(
                "manager: cancelling %s, still running after %.1fs",
                ", ".join(names),
                self._shutdown_timeout,
            )
            self._forced = True
            await self._cancel(pending)

    @staticmethod
    async def _cancel(tasks: Iterable[asyncio.Task[None]]) -> None:
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
