"""TTLCache (TTL, single-flight, negative results) and BatchLoader (windowed batching).

TTLs run on an injected clock; the loader's batching windows on the virtual clock
(``virtual_time``), so a window closes exactly on time however loaded the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from nats_tower_operator.tower import BatchLoader, TTLCache

pytestmark = pytest.mark.usefixtures("virtual_time")


def now() -> float:
    return asyncio.get_running_loop().time()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Missing(Exception):
    pass


class Loader:
    """Counts calls; each call waits for ``gate`` so concurrent callers overlap."""

    def __init__(self, results: list[object]) -> None:
        self.results = results
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()  # a call is running (and waiting for the gate)

    async def __call__(self) -> str:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        result = self.results[min(self.calls, len(self.results)) - 1]
        if isinstance(result, BaseException):
            raise result
        assert isinstance(result, str)
        return result


async def test_single_flight_and_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, str] = TTLCache(ttl=30, clock=clock)
    load = Loader(["v1", "v2"])
    load.gate.clear()
    waiters = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(50)]
    # The load starts after all 50 callers asked (tasks run in creation order).
    await load.entered.wait()
    assert load.calls == 1
    load.gate.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 50
    assert await cache.get_or_load("k", load) == "v1"
    assert cache.peek("k") == "v1"
    clock.now += 29.9
    assert await cache.get_or_load("k", load) == "v1"
    assert load.calls == 1
    clock.now += 0.2
    assert cache.peek("k") is None
    assert await cache.get_or_load("k", load) == "v2"
    assert load.calls == 2
    assert cache.loads == 2


async def test_errors_are_shared_but_not_cached() -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=30)
    load = Loader([RuntimeError("tower down"), "ok"])
    load.gate.clear()
    waiters = [asyncio.ensure_future(cache.get_or_load("k", load)) for _ in range(5)]
    await load.entered.wait()
    load.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert load.calls == 1
    assert await cache.get_or_load("k", load) == "ok"
    assert load.calls == 2


async def test_negative_results_cached_for_the_short_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, str] = TTLCache(ttl=30, negative_ttl=5, negative=(Missing,), clock=clock)
    load = Loader([Missing("no such installation"), "found"])
    for _ in range(3):
        with pytest.raises(Missing):
            await cache.get_or_load("k", load)
    assert load.calls == 1
    clock.now += 5.1
    assert await cache.get_or_load("k", load) == "found"
    assert load.calls == 2


async def test_ttl_per_value() -> None:
    clock = Clock()
    cache: TTLCache[str, bool] = TTLCache(ttl=30, clock=clock)
    calls = 0

    async def check() -> bool:
        nonlocal calls
        calls += 1
        return calls > 1

    def ttl_for(allowed: bool) -> float:
        return 30.0 if allowed else 2.0

    assert await cache.get_or_load("k", check, ttl_for=ttl_for) is False
    clock.now += 1
    assert await cache.get_or_load("k", check, ttl_for=ttl_for) is False
    clock.now += 1.5
    assert await cache.get_or_load("k", check, ttl_for=ttl_for) is True
    clock.now += 29
    assert await cache.get_or_load("k", check, ttl_for=ttl_for) is True
    assert calls == 2


async def test_invalidate_during_load_does_not_store_stale_value() -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=30)
    old = Loader(["stale"])
    old.gate.clear()
    first = asyncio.ensure_future(cache.get_or_load("k", old))
    await old.entered.wait()
    cache.invalidate()
    new = Loader(["fresh"])
    assert await cache.get_or_load("k", new) == "fresh"
    old.gate.set()
    assert await first == "stale"
    assert cache.peek("k") == "fresh"
    cache.invalidate("k")
    assert cache.peek("k") is None


async def test_cancelled_waiter_does_not_cancel_shared_load() -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=30)
    load = Loader(["v"])
    load.gate.clear()
    a = asyncio.ensure_future(cache.get_or_load("k", load))
    b = asyncio.ensure_future(cache.get_or_load("k", load))
    await load.entered.wait()  # both joined the load, which is running
    a.cancel()
    load.gate.set()
    assert await b == "v"
    assert a.cancelled()
    assert cache.peek("k") == "v"


async def test_max_size_evicts_oldest() -> None:
    cache: TTLCache[int, int] = TTLCache(ttl=30, max_size=3)
    for i in range(5):
        cache.put(i, i)
    assert len(cache) == 3
    assert [cache.peek(i) for i in range(5)] == [None, None, 2, 3, 4]


class Batch:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.times: list[float] = []
        self.delay = delay
        self.fail = fail
        self.entered = asyncio.Event()  # a batch call is running

    async def __call__(self, group: str, keys: Sequence[str]) -> Mapping[str, str]:
        self.calls.append((group, list(keys)))
        self.times.append(now())
        self.entered.set()
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("batch failed")
        return {k: k.upper() for k in keys if not k.startswith("missing")}


async def test_batch_loader_groups_a_burst() -> None:
    batch = Batch()
    loader: BatchLoader[str, str, str] = BatchLoader(batch, window=0.005, max_batch=40)
    keys = [f"k{i}" for i in range(100)]
    results = await asyncio.gather(
        *(loader.load("acct", k) for k in keys),
        loader.load("acct", "k85"),
        loader.load("other", "x"),
        loader.load("acct", "missing-1"),
    )
    assert results[:100] == [k.upper() for k in keys]
    assert results[100:] == ["K85", "X", None]
    acct_calls = [keys for group, keys in batch.calls if group == "acct"]
    assert [len(c) for c in acct_calls] == [
        40,
        40,
        21,
    ]  # k85 asked twice in one batch, fetched once
    assert [g for g, _ in batch.calls].count("other") == 1
    assert loader.batches == 4


async def test_batch_window_collects_stragglers() -> None:
    batch = Batch()
    loader: BatchLoader[str, str, str] = BatchLoader(batch, window=0.05)
    start = now()

    async def late(key: str, after: float) -> str | None:
        await asyncio.sleep(after)
        return await loader.load("g", key)

    keys = [("a", 0), ("b", 0.049), ("c", 0.051), ("d", 0.2)]
    results = await asyncio.gather(*(late(key, after) for key, after in keys))
    assert list(results) == ["A", "B", "C", "D"]
    # b came just before a's window closed, c just after it: c opened the next window.
    assert batch.calls == [("g", ["a", "b"]), ("g", ["c"]), ("g", ["d"])]
    assert [t - start for t in batch.times] == pytest.approx([0.05, 0.101, 0.25], abs=1e-4)


async def test_batch_failure_reaches_every_waiter_and_is_not_kept() -> None:
    batch = Batch(fail=True)
    loader: BatchLoader[str, str, str] = BatchLoader(batch, window=0.001)
    results = await asyncio.gather(*(loader.load("g", k) for k in "abc"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    batch.fail = False
    assert await loader.load("g", "a") == "A"
    assert len(batch.calls) == 2


async def test_batch_waiter_cancel_leaves_others() -> None:
    batch = Batch(delay=0.02)
    loader: BatchLoader[str, str, str] = BatchLoader(batch, window=0.001)
    a = asyncio.ensure_future(loader.load("g", "a"))
    b = asyncio.ensure_future(loader.load("g", "b"))
    await batch.entered.wait()  # the batch for both keys is in flight
    assert batch.calls == [("g", ["a", "b"])]
    a.cancel()
    assert await b == "B"
    await loader.aclose()
