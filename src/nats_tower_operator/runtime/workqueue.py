"""A de-duplicating, rate-limited asyncio work queue with controller-runtime semantics.

Items are keys (for controllers, a :class:`~nats_tower_operator.reconcile.Request`), never
object contents. The rules, as in client-go's workqueue:

* ``add`` de-duplicates: an item already waiting is not queued twice;
* an item being processed is never handed out again until its worker calls ``done``; adding it
  meanwhile marks it *dirty*, and ``done`` puts it back in the queue;
* ``add_after`` delays an add; for one item only the soonest pending delay is kept. All delayed
  items share one heap and one event-loop timer, so ten thousand delayed items cost ten thousand
  heap entries, not ten thousand tasks;
* ``add_rate_limited`` delays by the rate limiter's answer and ``forget`` resets it;
* ``shut_down`` stops accepting items, drops delayed adds and wakes the getters; ``get`` keeps
  handing out items already queued and raises :class:`ShutDown` once the queue is empty.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from contextlib import suppress
from typing import Generic, Protocol, TypeVar

from nats_tower_operator.runtime.ratelimit import RateLimiter, default_controller_limiter

__all__ = ["QueueMetrics", "ShutDown", "WorkQueue"]

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down and holds no more items."""


class QueueMetrics(Protocol):
    """Receives a queue's measurements (see :meth:`Metrics.queue_metrics`)."""

    def set_depth(self, depth: int) -> None:
        """The number of items waiting to be handed out changed to ``depth``."""
        ...

    def inc_adds(self) -> None:
        """An item was accepted into the queue."""
        ...

    def inc_retries(self) -> None:
        """An item was re-added through the rate limiter."""
        ...

    def observe_queue_latency(self, seconds: float) -> None:
        """An item waited ``seconds`` between being added and being handed to a worker."""
        ...

    def observe_work_duration(self, seconds: float) -> None:
        """A worker held an item for ``seconds`` (from ``get`` to ``done``)."""
        ...


class WorkQueue(Generic[T]):
    """A work queue of hashable keys for asyncio workers (see the module docstring)."""

    def __init__(
        self,
        name: str = "",
        *,
        limiter: RateLimiter | None = None,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._limiter: RateLimiter = (
            limiter if limiter is not None else default_controller_limiter()
        )
        self._metrics = metrics
        self._clock = clock

        self._queue: deque[T] = deque()  # ready items, in order
        self._dirty: set[T] = set()  # items that need processing (queued, or re-queue on done)
        self._processing: set[T] = set()  # items handed to a worker and not yet done
        self._added_at: dict[T, float] = {}  # for queue latency
        self._started_at: dict[T, float] = {}  # for work duration
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

        # Delayed adds: a heap of (ready_at, seq, item) plus the live entry per item; stale heap
        # entries (superseded by a sooner delay, or already fired) are skipped when popped.
        self._delayed: list[tuple[float, int, T]] = []
        self._delayed_entry: dict[T, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

        self._idle = asyncio.Event()
        self._idle.set()
        if metrics is not None:
            metrics.set_depth(0)

    # -- sizes ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Items waiting to be handed out (not counting processing or delayed items)."""
        return len(self._queue)

    @property
    def processing_count(self) -> int:
        """Items currently held by workers."""
        return len(self._processing)

    # -- adding --------------------------------------------------------------------------

    def add(self, item: T) -> None:
        """Queue ``item`` unless it is already waiting; ignored after shut down."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        self._added_at.setdefault(item, self._clock())
        self._idle.clear()
        if self._metrics is not None:
            self._metrics.inc_adds()
        if item in self._processing:
            return  # re-queued by done()
        self._enqueue(item)

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds; a sooner pending delay for it wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        current = self._delayed_entry.get(item)
        if current is not None and current[0] <= ready_at:
            return
        seq = next(self._seq)
        self._delayed_entry[item] = (ready_at, seq)
        heapq.heappush(self._delayed, (ready_at, seq, item))
        self._schedule_timer(loop)

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay its rate limiter asks for (counts as a retry)."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.inc_retries()
        self.add_after(item, self._limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset ``item``'s rate-limit history (call after it succeeded or gave up)."""
        self._limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """How many rate-limited adds ``item`` had since it was last forgotten."""
        return self._limiter.num_requeues(item)

    # -- taking ----------------------------------------------------------------------------

    async def get(self) -> T:
        """Wait for an item and mark it processing; raises :class:`ShutDown` when drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                getter.cancel()
                with suppress(ValueError):
                    self._getters.remove(getter)
                # We may have been woken for an item we will not take: pass the wake-up on.
                if self._queue and not getter.cancelled():
                    self._wake_one()
                raise
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        now = self._clock()
        self._started_at[item] = now
        added = self._added_at.pop(item, None)
        if self._metrics is not None:
            self._metrics.set_depth(len(self._queue))
            if added is not None:
                self._metrics.observe_queue_latency(max(0.0, now - added))
        return item

    def done(self, item: T) -> None:
        """Mark ``item`` finished; if it was added meanwhile, queue it again."""
        if item not in self._processing:
            return
        self._processing.discard(item)
        started = self._started_at.pop(item, None)
        if self._metrics is not None and started is not None:
            self._metrics.observe_work_duration(max(0.0, self._clock() - started))
        if item in self._dirty:
            self._enqueue(item)
        if not self._processing and not self._queue:
            self._idle.set()

    # -- stopping --------------------------------------------------------------------------

    def shut_down(self) -> None:
        """Stop accepting items, drop delayed adds, and wake every waiting getter."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._delayed.clear()
        self._delayed_entry.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    async def wait_idle(self) -> None:
        """Return once nothing is waiting or processing (delayed items are not counted)."""
        # Invariant: the event is set only while the queue and the processing set are empty.
        while self._queue or self._processing:
            await self._idle.wait()

    # -- internals -------------------------------------------------------------------------

    def _enqueue(self, item: T) -> None:
        self._queue.append(item)
        if self._metrics is not None:
            self._metrics.set_depth(len(self._queue))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _schedule_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Point the single timer at the soonest live delayed entry."""
        while self._delayed:
            ready_at, seq, item = self._delayed[0]
            if self._delayed_entry.get(item) == (ready_at, seq):
                break
            heapq.heappop(self._delayed)
        if not self._delayed:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        soonest = self._delayed[0][0]
        if self._timer is not None:
            if self._timer.when() == soonest:
                return
            self._timer.cancel()
        self._timer = loop.call_at(soonest, self._fire, loop, soonest)

    def _fire(self, loop: asyncio.AbstractEventLoop, scheduled: float) -> None:
        """Timer callback: add every delayed item whose time has come."""
        self._timer = None
        # The loop may run a timer marginally before its time (clock resolution).
        now = max(loop.time(), scheduled)
        while self._delayed and self._delayed[0][0] <= now:
            ready_at, seq, item = heapq.heappop(self._delayed)
            if self._delayed_entry.get(item) == (ready_at, seq):
                del self._delayed_entry[item]
                self.add(item)
        if not self._shutting_down:
            self._schedule_timer(loop)
