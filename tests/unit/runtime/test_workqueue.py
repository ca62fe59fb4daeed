"""The work queue: de-duplication, dirty re-queue, delays, rate limiting, shutdown, metrics.

Delays run on the virtual clock (``virtual_time``): an item is checked just before its
deadline and just after it, and "never fires" means "not even past its deadline".
"""

from __future__ import annotations

import asyncio
import random

import pytest

from nats_tower_operator.runtime.ratelimit import ItemExponentialLimiter
from nats_tower_operator.runtime.workqueue import ShutDown, WorkQueue

pytestmark = pytest.mark.usefixtures("virtual_time")


class RecordingQueueMetrics:
    """A QueueMetrics that keeps what it is told."""

    def __init__(self) -> None:
        self.depths: list[int] = []
        self.adds = 0
        self.retries = 0
        self.latencies: list[float] = []
        self.durations: list[float] = []

    def set_depth(self, depth: int) -> None:
        self.depths.append(depth)

    def inc_adds(self) -> None:
        self.adds += 1

    def inc_retries(self) -> None:
        self.retries += 1

    def observe_queue_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def observe_work_duration(self, seconds: float) -> None:
        self.durations.append(seconds)


async def get_soon(queue: WorkQueue[str], timeout: float = 2.0) -> str:
    return await asyncio.wait_for(queue.get(), timeout)


def now() -> float:
    return asyncio.get_running_loop().time()


async def advance_to(when: float) -> None:
    """Let the virtual clock run to ``when``, firing every timer due by then."""
    await asyncio.sleep(when - now())


# -- de-duplication and processing ---------------------------------------------------------


async def test_add_deduplicates_waiting_items() -> None:
    metrics = RecordingQueueMetrics()
    queue: WorkQueue[str] = WorkQueue("q", metrics=metrics)
    for item in ["a", "b", "a", "a", "b", "c"]:
        queue.add(item)
    assert len(queue) == 3
    assert metrics.adds == 3
    assert [await get_soon(queue) for _ in range(3)] == ["a", "b", "c"]
    assert queue.processing_count == 3
    assert len(queue) == 0  # the duplicates were never queued: a get would wait


async def test_item_added_while_processing_is_requeued_on_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await get_soon(queue) == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0  # dirty, not ready: not handed out while a worker holds it
    queue.done("a")
    assert len(queue) == 1
    assert await get_soon(queue) == "a"
    queue.done("a")
    assert len(queue) == 0
    assert queue.processing_count == 0


async def test_item_is_never_handed_to_two_getters_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    first = await get_soon(queue)
    second_getter = asyncio.create_task(queue.get())
    queue.add("a")
    assert len(queue) == 0  # marked dirty, not ready: there is nothing a getter could take
    await asyncio.sleep(0)  # the second getter runs, finds the queue empty and waits
    assert not second_getter.done()
    queue.done(first)
    assert await asyncio.wait_for(second_getter, 2) == "a"


async def test_done_without_get_is_ignored() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.done("a")
    assert queue.processing_count == 0
    assert len(queue) == 1


async def test_waiting_getters_are_woken_in_turn() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for item in "xyz":
        queue.add(item)
    results = await asyncio.wait_for(asyncio.gather(*getters), 2)
    assert sorted(results) == ["x", "y", "z"]


async def test_cancelled_getter_does_not_swallow_an_item() -> None:
    queue: WorkQueue[str] = WorkQueue()
    doomed = asyncio.create_task(queue.get())
    survivor = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")  # wakes `doomed` first ...
    doomed.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(survivor, 2) == "a"
    with pytest.raises(asyncio.CancelledError):
        await doomed


# -- delays ----------------------------------------------------------------------------------


async def test_add_after_delays_the_item() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = now()
    queue.add_after("a", 0.05)
    assert len(queue) == 0
    await advance_to(start + 0.049)
    assert len(queue) == 0
    await advance_to(start + 0.051)
    assert len(queue) == 1
    assert await get_soon(queue) == "a"


async def test_add_after_keeps_the_soonest_delay() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = now()
    queue.add_after("late-then-soon", 30)
    queue.add_after("late-then-soon", 0.02)
    queue.add_after("soon-then-late", 0.02)
    queue.add_after("soon-then-late", 30)
    await advance_to(start + 0.019)
    assert len(queue) == 0
    await advance_to(start + 0.021)
    assert len(queue) == 2
    got = {await get_soon(queue), await get_soon(queue)}
    assert got == {"late-then-soon", "soon-then-late"}
    for item in got:
        queue.done(item)
    await advance_to(start + 30.001)
    assert len(queue) == 0  # the superseded 30 s entries never fire, even past their time


async def test_delayed_items_come_out_in_time_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = now()
    queue.add_after("x", 0.09)
    queue.add_after("y", 0.03)
    queue.add_after("z", 0.06)
    got = [(await get_soon(queue), now() - start) for _ in range(3)]
    assert [item for item, _ in got] == ["y", "z", "x"]
    assert [at for _, at in got] == pytest.approx([0.03, 0.06, 0.09], abs=1e-4)


async def test_zero_delay_adds_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert len(queue) == 2


async def test_delayed_item_already_waiting_is_not_duplicated() -> None:
    queue: WorkQueue[str] = WorkQueue()
    start = now()
    queue.add("a")
    queue.add_after("a", 0.01)
    await advance_to(start + 0.011)  # the delayed add has fired
    assert len(queue) == 1
    queue.done(await get_soon(queue))
    assert len(queue) == 0


async def test_ten_thousand_delayed_items_use_no_task_per_item() -> None:
    queue: WorkQueue[int] = WorkQueue()
    rng = random.Random(3)
    delays = [rng.randint(10, 200) / 1000 for _ in range(10_000)]  # 0.010 s .. 0.200 s
    start = now()
    tasks_before = len(asyncio.all_tasks())
    for i, delay in enumerate(delays):
        queue.add_after(i, delay)
    assert len(asyncio.all_tasks()) == tasks_before
    await advance_to(start + 0.0095)
    assert len(queue) == 0
    await advance_to(start + 0.1005)  # halfway: exactly the items due by now are ready
    assert len(queue) == sum(1 for delay in delays if delay <= 0.1)
    await advance_to(start + 0.2005)
    assert len(queue) == 10_000


# -- rate limiting ---------------------------------------------------------------------------


async def test_add_rate_limited_backs_off_and_forget_resets() -> None:
    metrics = RecordingQueueMetrics()
    limiter = ItemExponentialLimiter(base=0.02, cap=1.0, jitter=0)
    queue: WorkQueue[str] = WorkQueue(limiter=limiter, metrics=metrics)
    gaps = []
    for attempt in range(3):
        start = now()
        queue.add_rate_limited("a")
        assert queue.num_requeues("a") == attempt + 1
        item = await get_soon(queue)
        gaps.append(now() - start)
        queue.done(item)
    assert gaps == pytest.approx([0.02, 0.04, 0.08], abs=1e-4)
    assert metrics.retries == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0


# -- shutdown --------------------------------------------------------------------------------


async def test_shut_down_wakes_getters_with_shutdown() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.shut_down()
    for getter in getters:
        with pytest.raises(ShutDown):
            await asyncio.wait_for(getter, 2)


async def test_shut_down_hands_out_queued_items_then_raises() -> None:
    queue: WorkQueue[str] = WorkQueue(limiter=ItemExponentialLimiter(base=0.02, jitter=0))
    start = now()
    queue.add("a")
    queue.add_after("later", 0.01)
    queue.shut_down()
    queue.add("b")
    queue.add_after("c", 0)
    queue.add_rate_limited("d")
    assert len(queue) == 1
    assert await get_soon(queue) == "a"
    with pytest.raises(ShutDown):
        await get_soon(queue)
    await advance_to(start + 0.021)  # past the 0.01 s delay and the 0.02 s backoff
    assert len(queue) == 0
    with pytest.raises(ShutDown):
        await get_soon(queue)


# -- idle and metrics ------------------------------------------------------------------------


async def test_wait_idle_returns_when_nothing_waits_or_processes() -> None:
    queue: WorkQueue[str] = WorkQueue()
    await asyncio.wait_for(queue.wait_idle(), 1)
    queue.add("a")
    queue.add_after("delayed", 30)
    idle = asyncio.create_task(queue.wait_idle())
    item = await get_soon(queue)
    queue.add("a")  # dirty while processing
    queue.done(item)
    assert len(queue) == 1  # done() queued it again: the queue is not idle
    await asyncio.sleep(0)  # the waiter runs and keeps waiting
    assert not idle.done()
    queue.done(await get_soon(queue))
    await asyncio.wait_for(idle, 1)  # long before the delayed item (30 s) is due


async def test_metrics_measure_depth_latency_and_work_duration() -> None:
    now = [100.0]
    metrics = RecordingQueueMetrics()
    queue: WorkQueue[str] = WorkQueue("q", metrics=metrics, clock=lambda: now[0])
    queue.add("a")
    queue.add("b")
    now[0] = 102.5
    item = await get_soon(queue)
    now[0] = 103.0
    queue.done(item)
    assert metrics.latencies == [2.5]
    assert metrics.durations == [0.5]
    assert metrics.depths == [0, 1, 2, 1]
    assert metrics.adds == 2
