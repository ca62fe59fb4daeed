"""Request economy for Tower lookups: a TTL cache with single-flight, and a batch loader.

* :class:`TTLCache` - ``get_or_load(key, loader)`` returns a fresh cached value or runs
  ``loader`` once for all concurrent callers of the same key (single-flight). Errors are
  not cached, except exception types the caller lists as negative results, which are
  cached (and re-raised) for a shorter TTL.
* :class:`BatchLoader` - the DataLoader pattern: ``load(group, key)`` calls arriving
  within a short window for the same group are answered by one batch call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BatchLoader", "TTLCache"]

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    expires: float
    value: V | None = None
    error: BaseException | None = None


class TTLCache(Generic[K, V]):
    """An async TTL cache whose concurrent misses for one key share a single load."""

    def __init__(
        self,
        *,
        ttl: float,
        negative_ttl: float = 0.0,
        negative: tuple[type[BaseException], ...] = (),
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Cache values for ``ttl`` s and ``negative`` exceptions for ``negative_ttl`` s."""
        if ttl < 0 or negative_ttl < 0 or max_size < 1:
            raise ValueError("ttl and negative_ttl must be >= 0 and max_size >= 1")
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._negative = negative
        self._max_size = max_size
        self._clock = clock
        self._entries: dict[K, _Entry[V]] = {}
        self._inflight: dict[K, asyncio.Task[V]] = {}
        #: Number of loads started (cache misses that were not joined to a load in flight).
        self.loads = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> V | None:
        """The fresh cached value of ``key`` (None when absent, expired or negative)."""
        entry = self._fresh(key)
        return None if entry is None or entry.error is not None else entry.value

    def invalidate(self, key: K | None = None) -> None:
        """Drop one key, or everything; loads in flight then do not fill the cache."""
        if key is None:
            self._entries.clear()
            self._inflight.clear()
        else:
            self._entries.pop(key, None)
            self._inflight.pop(key, None)

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (default: the cache's TTL)."""
        ttl = self._ttl if ttl is None else ttl
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        self._store(key, _Entry(expires=self._clock() + ttl, value=value))

    async def get_or_load(
        self,
        key: K,
        loader: Callable[[], Awaitable[V]],
        *,
        ttl_for: Callable[[V], float] | None = None,
    ) -> V:
        """The cached value of ``key``, or the result of one shared ``loader()`` call.

        ``ttl_for(value)`` may choose the TTL per value (e.g. a shorter one for ``False``).
        A caller cancelled while waiting does not cancel the load shared with others.
        """
        entry = self._fresh(key)
        if entry is not None:
            if entry.error is not None:
                raise entry.error.with_traceback(None)
            return entry.value  # type: ignore[return-value]
        task = self._inflight.get(key)
        if task is None:
            self.loads += 1
            task = asyncio.ensure_future(self._load(key, loader, ttl_for))
            self._inflight[key] = task
            task.add_done_callback(_consume_exception)
        return await asyncio.shield(task)

    async def _load(
        self,
        key: K,
        loader: Callable[[], Awaitable[V]],
        ttl_for: Callable[[V], float] | None,
    ) -> V:
        me = asyncio.current_task()
        try:
            value = await loader()
        except self._negative as exc:
            if self._finish(key, me) and self._negative_ttl > 0:
                self._store(key, _Entry(expires=self._clock() + self._negative_ttl, error=exc))
            raise
        except BaseException:
            self._finish(key, me)
            raise
        if self._finish(key, me):
            self.put(key, value, ttl=ttl_for(value) if ttl_for is not None else None)
        return value

    def _finish(self, key: K, task: asyncio.Task[object] | None) -> bool:
        """Forget the load in flight; False when it was invalidated meanwhile."""
        if self._inflight.get(key) is task:
            del self._inflight[key]
            return True
        return False

    def _fresh(self, key: K) -> _Entry[V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _store(self, key: K, entry: _Entry[V]) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry
        if len(self._entries) > self._max_size:
            now = self._clock()
            for k in [k for k, e in self._entries.items() if e.expires <= now]:
                del self._entries[k]
            while len(self._entries) > self._max_size:
                # dicts keep insertion order: drop the oldest entry
                del self._entries[next(iter(self._entries))]


def _consume_exception(task: asyncio.Task[object]) -> None:
    """Mark a shared load's exception as retrieved even if every waiter was cancelled."""
    if not task.cancelled():
        task.exception()


BatchFunction = Callable[[G, Sequence[K]], Awaitable[Mapping[K, V]]]


class BatchLoader(Generic[G, K, V]):
    """Collects ``load(group, key)`` calls and answers each group's keys with one batch call.

    A batch is dispatched ``window`` seconds after its first key arrives, or at once when
    it holds ``max_batch`` distinct keys. Keys missing from the batch answer load as None;
    a failing batch call fails every ``load`` waiting on it.
    """

    def __init__(
        self,
        batch: BatchFunction[G, K, V],
        *,
        window: float = 0.005,
        max_batch: int = 40,
    ) -> None:
        if window < 0 or max_batch < 1:
            raise ValueError("window must be >= 0 and max_batch >= 1")
        self._batch = batch
        self._window = window
        self._max_batch = max_batch
        self._pending: dict[G, dict[K, list[asyncio.Future[V | None]]]] = {}
        self._timers: dict[G, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Number of batch calls made.
        self.batches = 0

    async def load(self, group: G, key: K) -> V | None:
        """The value for ``key`` in ``group``, fetched together with concurrent loads."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        pending = self._pending.setdefault(group, {})
        pending.setdefault(key, []).append(future)
        if len(pending) >= self._max_batch:
            self._dispatch(group)
        elif group not in self._timers:
            self._timers[group] = loop.call_later(self._window, self._dispatch, group)
        return await future

    def _dispatch(self, group: G) -> None:
        timer = self._timers.pop(group, None)
        if timer is not None:
            timer.cancel()
        waiting = self._pending.pop(group, None)
        if not waiting:
            return
        task = asyncio.ensure_future(self._run(group, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, group: G, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:  # noqa: C901 - the single-flight batch loop with its error cases
        self.batches += 1
        try:
            result = await self._batch(group, list(waiting))
        except asyncio.CancelledError:
            for futures in waiting.values():
                for fut in futures:
                    fut.cancel()
            raise
        except Exception as exc:
            # handed to every waiter, which re-raises it
            for futures in waiting.values():
                for fut in futures:
                    if not fut.done():
                        fut.set_exception(exc)
            return
        for key, futures in waiting.items():
            value = result.get(key)
            for fut in futures:
                if not fut.done():
                    fut.set_result(value)

    async def aclose(self) -> None:
        """Dispatch what is pending and wait for batches in flight."""
        for group in list(self._pending):
            self._dispatch(group)
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._tasks, return_exceptions=True)
