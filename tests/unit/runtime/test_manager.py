"""The manager: leader gating, ordered graceful stop, crashes, deadlines and signals.

In-process tests run on the virtual clock (``virtual_time``); the signal tests run a real child
process and wait for what it prints, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nats_tower_operator.reconcile import Request, Result
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.manager import AlwaysLeader, Manager
from nats_tower_operator.runtime.metrics import Metrics

pytestmark = pytest.mark.usefixtures("virtual_time")


class Waiter:
    """A well-behaved runnable: runs until stopped and records what it saw."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.started = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self.log.append(f"start {self.name}")
        self.started.set()
        await stop.wait()
        await asyncio.sleep(0.01)
        self.log.append(f"stop {self.name}")


class Crasher:
    def __init__(self, name: str = "crasher", after: float = 0.02) -> None:
        self.name = name
        self.after = after

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(self.after)
        raise RuntimeError("boom")


class Stubborn:
    """Ignores its stop event."""

    name = "stubborn"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def run(self, stop: asyncio.Event) -> None:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class Once:
    """Finishes on its own."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.01)


class ManualGate:
    def __init__(self) -> None:
        self.asked = asyncio.Event()  # the manager is waiting for leadership
        self.opened = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.opened.is_set()

    async def wait_leader(self) -> None:
        self.asked.set()
        await self.opened.wait()


class BrokenGate:
    is_leader = False

    async def wait_leader(self) -> None:
        await asyncio.sleep(0.01)
        raise ConnectionError("lease API unreachable")


def leader_value(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("nats_tower_operator_leader")


async def run_manager(manager: Manager) -> asyncio.Task[int]:
    task = asyncio.create_task(manager.run_forever(install_signal_handlers=False))
    await asyncio.sleep(0)
    return task


async def test_clean_stop_stops_the_leader_group_before_the_rest() -> None:
    log: list[str] = []
    manager = Manager()
    controller, cache = Waiter("controller", log), Waiter("cache", log)
    manager.add(controller)
    manager.add(cache, needs_leader=False)
    task = await run_manager(manager)
    await asyncio.wait_for(asyncio.gather(controller.started.wait(), cache.started.wait()), 2)
    manager.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert log[2:] == ["stop controller", "stop cache"]
    assert manager.crashed == ()


async def test_a_crash_stops_everything_with_a_nonzero_exit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    manager = Manager()
    manager.add(Waiter("controller", log))
    manager.add(Waiter("health", log), needs_leader=False)
    manager.add(Crasher(), needs_leader=False)
    task = await run_manager(manager)
    assert await asyncio.wait_for(task, 5) == 1
    assert sorted(log) == ["start controller", "start health", "stop controller", "stop health"]
    assert manager.crashed == ("crasher",)
    assert any("crasher crashed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_leader_runnables_wait_for_the_gate() -> None:
    log: list[str] = []
    gate = ManualGate()
    metrics = Metrics()
    manager = Manager(leader_gate=gate, metrics=metrics)
    controller, cache = Waiter("controller", log), Waiter("cache", log)
    manager.add(controller, needs_leader=True)
    manager.add(cache, needs_leader=False)
    task = await run_manager(manager)
    await asyncio.wait_for(cache.started.wait(), 2)
    await asyncio.wait_for(gate.asked.wait(), 2)  # the leader group now waits on the gate
    assert log == ["start cache"]
    assert leader_value(metrics) == 0
    gate.opened.set()
    await asyncio.wait_for(controller.started.wait(), 2)
    assert leader_value(metrics) == 1
    manager.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert leader_value(metrics) == 0


async def test_stop_before_leadership_never_starts_leader_runnables() -> None:
    log: list[str] = []
    gate = ManualGate()
    manager = Manager(leader_gate=gate)
    manager.add(Waiter("controller", log))
    manager.add(Waiter("cache", log), needs_leader=False)
    task = await run_manager(manager)
    await asyncio.wait_for(gate.asked.wait(), 2)
    manager.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert log == ["start cache", "stop cache"]


async def test_a_failing_gate_stops_the_manager() -> None:
    log: list[str] = []
    manager = Manager(leader_gate=BrokenGate())
    manager.add(Waiter("controller", log))
    manager.add(Waiter("cache", log), needs_leader=False)
    assert await asyncio.wait_for(manager.run_forever(install_signal_handlers=False), 5) == 1
    assert manager.crashed == ("leader-gate",)
    assert log == ["start cache", "stop cache"]


async def test_runnables_past_the_deadline_are_cancelled() -> None:
    stubborn = Stubborn()
    manager = Manager(shutdown_timeout=0.1)
    manager.add(stubborn)
    task = await run_manager(manager)
    await asyncio.wait_for(stubborn.started.wait(), 2)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    manager.request_stop()
    assert await asyncio.wait_for(task, 5) == 1
    assert loop.time() - begin == pytest.approx(0.1, abs=1e-4)  # cancelled at the deadline
    assert stubborn.cancelled


async def test_the_manager_stops_when_every_runnable_finished() -> None:
    manager = Manager()
    manager.add(Once("a"))
    manager.add(Once("b"), needs_leader=False)
    assert await asyncio.wait_for(manager.run_forever(install_signal_handlers=False), 5) == 0


async def test_checks_report_crashes_and_stopping() -> None:
    manager = Manager()
    ready = [False]
    manager.add_ready_check("caches-synced", lambda: ready[0])
    manager.add(Crasher(after=0.05), needs_leader=False)
    manager.add(Waiter("w", []), needs_leader=False)
    results = {r.name: r.ok for r in await manager.run_ready_checks()}
    assert results == {"not-stopping": True, "caches-synced": False}
    ready[0] = True
    assert all(r.ok for r in await manager.run_ready_checks())
    assert all(r.ok for r in await manager.run_health_checks())
    assert await manager.run_forever(install_signal_handlers=False) == 1
    health = {r.name: r.ok for r in await manager.run_health_checks()}
    assert health == {"runnables": False}
    assert not all(r.ok for r in await manager.run_ready_checks())
    with pytest.raises(RuntimeError):
        await manager.run_forever(install_signal_handlers=False)
    with pytest.raises(RuntimeError):
        manager.add(Once("late"))


async def test_a_controller_is_a_runnable() -> None:
    seen: list[Request] = []

    class Rec:
        async def reconcile(self, request: Request) -> Result:
            seen.append(request)
            return Result()

    metrics = Metrics()
    controller = Controller("pods", Rec(), workers=2, metrics=metrics)
    manager = Manager(leader_gate=AlwaysLeader(), metrics=metrics)
    manager.add(controller)
    task = await run_manager(manager)
    for i in range(5):
        controller.enqueue(Request("ns", f"p{i}"))
    await controller.wait_idle(5)
    manager.request_stop()
    assert await asyncio.wait_for(task, 5) == 0
    assert len(seen) == 5
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    totals = {
        s.labels["result"]: s.value
        for s in families["nats_tower_operator_reconcile"].samples
        if s.name.endswith("_total")
    }
    assert totals == {"success": 5, "requeue": 0, "error": 0, "terminal": 0}


# -- signals, in a real child process ---------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, logging, sys

    from nats_tower_operator.runtime.manager import Manager

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    class Worker:
        name = "worker"
        def __init__(self, stubborn):
            self.stubborn = stubborn
        async def run(self, stop):
            print("started", flush=True)
            if self.stubborn:
                await asyncio.sleep(60)
            await stop.wait()
            await asyncio.sleep(0.05)  # "finish in-flight work"
            print("drained", flush=True)

    async def main():
        manager = Manager(shutdown_timeout=30)
        manager.add(Worker(stubborn=sys.argv[1] == "stubborn"))
        return await manager.run_forever()

    sys.exit(asyncio.run(main()))
    """
)


def spawn(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    return proc


def test_sigterm_drains_and_exits_zero(tmp_path: Path) -> None:
    proc = spawn(tmp_path, "polite")
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == "drained"


def test_a_second_signal_cancels_and_exits_nonzero(tmp_path: Path) -> None:
    proc = spawn(tmp_path, "stubborn")
    assert proc.stderr is not None
    os.kill(proc.pid, signal.SIGTERM)
    # The second signal must come after the manager handled the first one.
    for line in proc.stderr:
        if line.strip() == "manager: received SIGTERM":
            break
    else:
        pytest.fail("the child never reported the first signal")
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1, err
    assert "drained" not in out


async def test_cancelling_the_manager_cancels_its_runnables() -> None:
    stubborn = Stubborn()
    manager = Manager()
    manager.add(stubborn, needs_leader=False)
    task = await run_manager(manager)
    await asyncio.wait_for(stubborn.started.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert stubborn.cancelled
