"""Controllers: workers, one worker per key, result handling, timeouts and graceful stop.

Everything runs on the virtual clock (``virtual_time``): delays are asserted exactly, and "no
further reconcile" is asserted after advancing past the longest delay that could bring one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from nats_tower_operator.reconcile import Request, Result, TerminalError
from nats_tower_operator.runtime.controller import Controller
from nats_tower_operator.runtime.ratelimit import ItemExponentialLimiter

pytestmark = pytest.mark.usefixtures("virtual_time")

Behaviour = Callable[[Request, int], Awaitable[Result]]


async def succeed(request: Request, attempt: int) -> Result:
    return Result()


class RecordingReconciler:
    """Runs a per-call behaviour and records calls, times and concurrency per key."""

    def __init__(self, behaviour: Behaviour = succeed, *, hold: float = 0.0) -> None:
        self.behaviour = behaviour
        self.hold = hold
        self.calls: Counter[Request] = Counter()
        self.times: dict[Request, list[float]] = defaultdict(list)
        self.active: Counter[Request] = Counter()
        self.max_active_per_key: Counter[Request] = Counter()
        self.total_active = 0
        self.max_total_active = 0
        self.started_seq: dict[Request, list[int]] = defaultdict(list)
        self.seq = 0
        self.finished: list[Request] = []
        self.cancelled: list[Request] = []
        self._changed = asyncio.Event()

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is checked whenever a reconcile starts or ends."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def reconcile(self, request: Request) -> Result:
        attempt = self.calls[request]
        self.calls[request] += 1
        self.times[request].append(asyncio.get_running_loop().time())
        self.started_seq[request].append(self.tick())
        self.active[request] += 1
        self.total_active += 1
        self.max_active_per_key[request] = max(
            self.max_active_per_key[request], self.active[request]
        )
        self.max_total_active = max(self.max_total_active, self.total_active)
        self._changed.set()
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            result = await self.behaviour(request, attempt)
        except asyncio.CancelledError:
            self.cancelled.append(request)
            raise
        finally:
            self.active[request] -= 1
            self.total_active -= 1
            self._changed.set()
        self.finished.append(request)
        return result


def req(name: str, namespace: str = "ns") -> Request:
    return Request(namespace, name)


def now() -> float:
    return asyncio.get_running_loop().time()


async def advance_to(when: float) -> None:
    """Let the virtual clock run to ``when``, firing every timer due by then."""
    await asyncio.sleep(when - now())


async def start(controller: Controller) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    await asyncio.sleep(0)
    return stop, task


async def finish(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 5)


def fast_limiter() -> ItemExponentialLimiter:
    return ItemExponentialLimiter(base=0.01, cap=1.0, jitter=0)


async def test_one_key_is_never_reconciled_by_two_workers() -> None:
    reconciler = RecordingReconciler(hold=0.005)
    controller = Controller("c", reconciler, workers=6)
    stop, task = await start(controller)
    keys = [req(f"k{i}") for i in range(4)]
    last_enqueue: dict[Request, int] = {}
    for _ in range(40):
        for key in keys:
            controller.enqueue(key)
            last_enqueue[key] = reconciler.tick()
        await asyncio.sleep(0.002)
    await controller.wait_idle(5)
    await finish(stop, task)
    assert all(reconciler.max_active_per_key[k] == 1 for k in keys)
    assert reconciler.max_total_active > 1  # the workers did run in parallel
    for key in keys:
        # level-triggered: every enqueue is followed by a reconcile that started after it
        assert reconciler.started_seq[key][-1] > last_enqueue[key]
        assert reconciler.calls[key] < 40  # repeated enqueues were de-duplicated


async def test_success_forgets_the_backoff() -> None:
    async def fail_twice(request: Request, attempt: int) -> Result:
        if attempt < 2:
            raise RuntimeError("not yet")
        return Result()

    reconciler = RecordingReconciler(fail_twice)
    controller = Controller("c", reconciler, limiter=fast_limiter())
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: req("a") in reconciler.finished)
    await controller.wait_idle(5)
    assert controller.queue.num_requeues(req("a")) == 0
    await finish(stop, task)


async def test_requeue_after_looks_again_later() -> None:
    async def requeue_once(request: Request, attempt: int) -> Result:
        return Result(requeue_after=0.05) if attempt == 0 else Result()

    reconciler = RecordingReconciler(requeue_once)
    controller = Controller("c", reconciler)
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: reconciler.finished == [req("a")] * 2)
    first, second = reconciler.times[req("a")]
    assert second - first == pytest.approx(0.05, abs=1e-4)
    assert controller.queue.num_requeues(req("a")) == 0
    # No third look, even past the longest delay the controller could pick (the default
    # limiter's 300 s cap):
    await advance_to(second + 300.001)
    assert reconciler.calls[req("a")] == 2
    await finish(stop, task)


async def test_terminal_error_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    async def terminal(request: Request, attempt: int) -> Result:
        raise TerminalError("label nats-tower.com/nats-tower-account is missing")

    reconciler = RecordingReconciler(terminal)
    controller = Controller("pods", reconciler, limiter=fast_limiter())
    stop, task = await start(controller)
    with caplog.at_level(logging.WARNING, logger="nats_tower_operator.runtime.controller"):
        controller.enqueue(req("a"))
        await controller.wait_idle(5)
        # A retry would come after 0.01 s, and no later than the limiter's 1 s cap:
        await advance_to(reconciler.times[req("a")][0] + 1.001)
    assert reconciler.calls[req("a")] == 1
    assert controller.queue.num_requeues(req("a")) == 0
    [record] = [r for r in caplog.records if "ns/a" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert (
        "TerminalError: label nats-tower.com/nats-tower-account is missing" in record.getMessage()
    )
    await finish(stop, task)


async def test_errors_are_retried_with_growing_delays(caplog: pytest.LogCaptureFixture) -> None:
    async def fail_four_times(request: Request, attempt: int) -> Result:
        if attempt < 4:
            raise ValueError(f"boom {attempt}")
        return Result()

    reconciler = RecordingReconciler(fail_four_times)
    limiter = ItemExponentialLimiter(base=0.02, cap=10.0, jitter=0)
    controller = Controller("c", reconciler, limiter=limiter)
    stop, task = await start(controller)
    with caplog.at_level(logging.DEBUG, logger="nats_tower_operator.runtime.controller"):
        controller.enqueue(req("a"))
        await reconciler.wait_until(lambda: req("a") in reconciler.finished)
    times = reconciler.times[req("a")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.02, 0.04, 0.08, 0.16], abs=1e-4)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ValueError: boom 0" in m and "retry #1" in m for m in warnings), warnings
    assert any("ValueError: boom 3" in m and "retry #4" in m for m in warnings), warnings
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert len(debug) == 4  # the traceback goes to debug only
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.WARNING)
    assert limiter.num_requeues(req("a")) == 0
    await finish(stop, task)


async def test_reconcile_timeout_counts_as_an_error_and_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def hang_first(request: Request, attempt: int) -> Result:
        if attempt == 0:
            await asyncio.sleep(30)
        return Result()

    reconciler = RecordingReconciler(hang_first)
    controller = Controller("c", reconciler, limiter=fast_limiter(), reconcile_timeout=0.05)
    stop, task = await start(controller)
    with caplog.at_level(logging.WARNING, logger="nats_tower_operator.runtime.controller"):
        controller.enqueue(req("a"))
        await reconciler.wait_until(lambda: req("a") in reconciler.finished)
    assert reconciler.calls[req("a")] == 2
    assert reconciler.cancelled == [req("a")]
    first, second = reconciler.times[req("a")]
    assert second - first == pytest.approx(0.05 + 0.01, abs=1e-4)  # the timeout, then backoff
    assert any("timed out after 0.05s" in r.getMessage() for r in caplog.records)
    await finish(stop, task)


async def test_a_reconciler_leaking_cancelled_error_is_retried() -> None:
    async def leak_cancel(request: Request, attempt: int) -> Result:
        if attempt == 0:
            raise asyncio.CancelledError
        return Result()

    reconciler = RecordingReconciler(leak_cancel)
    controller = Controller("c", reconciler, workers=1, limiter=fast_limiter())
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: req("a") in reconciler.finished)
    assert not task.done()  # the worker survived
    await finish(stop, task)


async def test_enqueue_after_delays_the_reconcile() -> None:
    reconciler = RecordingReconciler()
    controller = Controller("c", reconciler)
    stop, task = await start(controller)
    begin = now()
    controller.enqueue_after(req("a"), 0.05)
    assert controller.queue_depth == 0
    await advance_to(begin + 0.049)
    assert reconciler.calls[req("a")] == 0
    await advance_to(begin + 0.051)
    assert reconciler.calls[req("a")] == 1
    assert reconciler.times[req("a")][0] - begin == pytest.approx(0.05, abs=1e-4)
    await finish(stop, task)


async def test_stop_lets_in_flight_reconciles_finish_and_takes_no_new_work() -> None:
    reconciler = RecordingReconciler(hold=0.1)
    controller = Controller("c", reconciler, workers=2, drain_timeout=5)
    stop, task = await start(controller)
    for name in "abcdef":
        controller.enqueue(req(name))
    await reconciler.wait_until(lambda: reconciler.total_active == 2)
    in_flight = [r for r, n in reconciler.active.items() if n]
    stop.set()
    await asyncio.wait_for(task, 5)
    assert set(reconciler.finished) == set(in_flight)
    assert len(reconciler.finished) == 2
    assert reconciler.cancelled == []
    assert sum(reconciler.calls.values()) == 2
    controller.enqueue(req("z"))  # ignored after stop
    assert controller.queue_depth == 4


async def test_stop_cancels_reconciles_past_the_drain_deadline() -> None:
    reconciler = RecordingReconciler(hold=30)
    controller = Controller("c", reconciler, workers=1, drain_timeout=0.05)
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: reconciler.total_active)
    stopped = now()
    stop.set()
    await asyncio.wait_for(task, 2)
    assert now() - stopped == pytest.approx(0.05, abs=1e-4)
    assert reconciler.cancelled == [req("a")]
    assert controller.queue.processing_count == 0


async def test_cancelling_run_cancels_the_workers() -> None:
    reconciler = RecordingReconciler(hold=30)
    controller = Controller("c", reconciler, workers=1)
    _stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: reconciler.total_active)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert reconciler.cancelled == [req("a")]


async def test_wait_idle_times_out_while_busy() -> None:
    reconciler = RecordingReconciler(hold=30)
    controller = Controller("c", reconciler, workers=1, drain_timeout=0.01)
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    with pytest.raises(TimeoutError):
        await controller.wait_idle(0.05)
    await finish(stop, task)


async def test_a_controller_runs_once() -> None:
    controller = Controller("c", RecordingReconciler())
    stop = asyncio.Event()
    stop.set()
    await controller.run(stop)
    with pytest.raises(RuntimeError):
        await controller.run(stop)


def test_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        Controller("c", RecordingReconciler(), workers=0)


async def test_a_reconciler_returning_garbage_is_retried(caplog: pytest.LogCaptureFixture) -> None:
    async def garbage(request: Request, attempt: int) -> Result:
        return None if attempt == 0 else Result()  # type: ignore[return-value]

    reconciler = RecordingReconciler(garbage)
    controller = Controller("c", reconciler, workers=1, limiter=fast_limiter())
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: reconciler.calls[req("a")] == 2)
    await controller.wait_idle(5)
    assert any("TypeError: reconcile returned NoneType" in r.getMessage() for r in caplog.records)
    await finish(stop, task)


class BrokenLimiter:
    """A limiter with a bug: the controller must not hide it."""

    def when(self, item: object) -> float:
        raise ZeroDivisionError("bug")

    def forget(self, item: object) -> None:
        pass

    def num_requeues(self, item: object) -> int:
        return 0


async def test_a_worker_crash_stops_the_controller_with_an_error() -> None:
    async def fail(request: Request, attempt: int) -> Result:
        raise ValueError("retry me")

    reconciler = RecordingReconciler(fail)
    controller = Controller("c", reconciler, workers=2, limiter=BrokenLimiter())
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    controller.enqueue(req("a"))
    with pytest.raises(RuntimeError, match="worker crashed") as info:
        await asyncio.wait_for(task, 5)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not stop.is_set()


async def test_cancelling_run_during_the_drain_cancels_the_workers() -> None:
    reconciler = RecordingReconciler(hold=30)
    controller = Controller("c", reconciler, workers=1, drain_timeout=30)
    stop, task = await start(controller)
    controller.enqueue(req("a"))
    await reconciler.wait_until(lambda: reconciler.total_active)
    stop.set()
    await advance_to(now() + 1)  # 1 s into the 30 s drain, the reconcile still running
    assert not task.done() and reconciler.total_active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert reconciler.cancelled == [req("a")]
