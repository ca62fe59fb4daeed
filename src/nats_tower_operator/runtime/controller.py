"""A controller: N asyncio workers feeding a work queue of requests to one reconciler.

It applies the reconcile contract of :mod:`nats_tower_operator.reconcile` to the queue:

* ``Result()``: forget the key's backoff, done;
* ``Result(requeue_after=s)``: forget, look again after *s* seconds;
* :class:`~nats_tower_operator.reconcile.TerminalError`: forget, log a warning, no retry;
* any other exception, or a reconcile exceeding ``reconcile_timeout``: retry with the rate
  limiter's backoff.

One key is never reconciled by two workers at once (the queue guarantees it). When the stop
event is set the workers take no new work, in-flight reconciles get ``drain_timeout`` seconds to
finish, and whatever is still running after that is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time

from nats_tower_operator.reconcile import Reconciler, Request, Result, TerminalError
from nats_tower_operator.runtime.metrics import Metrics, ReconcileOutcome
from nats_tower_operator.runtime.ratelimit import RateLimiter
from nats_tower_operator.runtime.workqueue import ShutDown, WorkQueue

__all__ = ["Controller"]

logger = logging.getLogger(__name__)


class Controller:
    """Runs ``workers`` concurrent reconciles of queued requests (a manager runnable)."""

    def __init__(  # noqa: PLR0913 - keyword-only controller options
        self,
        name: str,
        reconciler: Reconciler,
        *,
        workers: int = 8,
        limiter: RateLimiter | None = None,
        metrics: Metrics | None = None,
        reconcile_timeout: float = 120.0,
        drain_timeout: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self._reconciler = reconciler
        self._workers = workers
        self._metrics = metrics
        self._reconcile_timeout = reconcile_timeout
        self._drain_timeout = drain_timeout
        self._queue: WorkQueue[Request] = WorkQueue(
            name,
            limiter=limiter,
            metrics=metrics.queue_metrics(name) if metrics is not None else None,
        )
        if metrics is not None:
            metrics.declare_controller(name)
        self._stopping = False
        self._started = False

    # -- feeding -----------------------------------------------------------------------------

    def enqueue(self, request: Request) -> None:
        """Ask for ``request`` to be reconciled (de-duplicated with pending work)."""
        self._queue.add(request)

    def enqueue_after(self, request: Request, delay: float) -> None:
        """Ask for ``request`` to be reconciled after ``delay`` seconds."""
        self._queue.add_after(request, delay)

    # -- observing ---------------------------------------------------------------------------

    @property
    def queue(self) -> WorkQueue[Request]:
        """The controller's work queue (read its sizes; feed it through ``enqueue``)."""
        return self._queue

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a worker (not counting in-flight or delayed ones)."""
        return len(self._queue)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no request is waiting or in flight (delayed requests do not count).

        Raises ``TimeoutError`` if that does not happen within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            await self._queue.wait_idle()

    # -- running -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run the workers until ``stop`` is set, then drain; re-raises a worker crash."""
        if self._started:
            raise RuntimeError(f"controller {self.name} can only run once")
        self._started = True
        workers = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self._workers)
        ]
        stop_wait = asyncio.create_task(stop.wait(), name=f"{self.name}-stop")
        logger.info("controller %s started with %d workers", self.name, self._workers)
        try:
            await asyncio.wait([stop_wait, *workers], return_when=asyncio.FIRST_COMPLETED)
            # Reached when stop is set, or when a worker crashed.
            self._halt(stop_wait)
            await self._drain(workers)
        except asyncio.CancelledError:
            # Cancelled from outside (a manager past its deadline): stop now, no more drain.
            self._halt(stop_wait)
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        for task in workers:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"controller {self.name} worker crashed") from task.exception()
        logger.info("controller %s stopped", self.name)

    def _halt(self, stop_wait: asyncio.Task[bool]) -> None:
        stop_wait.cancel()
        self._stopping = True
        self._queue.shut_down()

    async def _drain(self, workers: list[asyncio.Task[None]]) -> None:
        """Give in-flight reconciles ``drain_timeout`` seconds, then cancel the rest."""
        in_flight = self._queue.processing_count
        _, pending = await asyncio.wait(workers, timeout=self._drain_timeout)
        if pending:
            logger.warning(
                "controller %s: cancelling %d reconciles still running after the %.1fs drain",
                self.name,
                len(pending),
                self._drain_timeout,
            )
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)
        elif in_flight:
            logger.info("controller %s: %d in-flight reconciles finished", self.name, in_flight)

    async def _worker(self) -> None:
        while not self._stopping:
            try:
                request = await self._queue.get()
            except ShutDown:
                return
            try:
                if self._stopping:
                    return  # take no new work once stopping; the item is dropped
                await self._reconcile_one(request)
            finally:
                self._queue.done(request)

    async def _reconcile_one(self, request: Request) -> None:
        started = time.monotonic()
        outcome: ReconcileOutcome = "error"
        try:
            outcome = await self._call(request)
        finally:
            if self._metrics is not None:
                self._metrics.observe_reconcile(self.name, outcome, time.monotonic() - started)

    async def _call(self, request: Request) -> ReconcileOutcome:
        """One reconcile of ``request``, with its result applied to the queue."""
        deadline = asyncio.timeout(self._reconcile_timeout)
        try:
            async with deadline:
                result = await self._reconciler.reconcile(request)
            if not isinstance(result, Result):
                raise TypeError(f"reconcile returned {type(result).__name__}, not Result")
        except TerminalError as exc:
            self._queue.forget(request)
            logger.warning(
                "%s %s: not retrying (%s: %s)", self.name, request, type(exc).__name__, exc
            )
            return "terminal"
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # we are being cancelled (drain deadline passed)
            # The reconciler cancelled something of its own and let it escape: a failure.
            self._retry(request, exc, timed_out=False)
            return "error"
        except Exception as exc:  # the contract: any other error means retry with backoff
            self._retry(request, exc, timed_out=deadline.expired())
            return "error"
        return self._apply(request, result)

    def _apply(self, request: Request, result: Result) -> ReconcileOutcome:
        self._queue.forget(request)
        if result.requeue_after is None:
            return "success"
        self._queue.add_after(request, result.requeue_after)
        return "requeue"

    def _retry(self, request: Request, exc: BaseException, *, timed_out: bool) -> None:
        self._queue.add_rate_limited(request)
        attempt = self._queue.num_requeues(request)
        if timed_out:
            reason = f"timed out after {self._reconcile_timeout:g}s"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        logger.debug("%s %s: reconcile failed", self.name, request, exc_info=exc)
        log = logger.error if attempt >= 10 else logger.warning
        log("%s %s: reconcile failed (%s); retry #%d", self.name, request, reason, attempt)
