"""Rate limiters that decide how long a failed work item waits before its next try.

The vocabulary is client-go's: ``when(item)`` reserves the next slot for ``item`` and answers
the delay in seconds, ``forget(item)`` clears its failure history after a success, and
``num_requeues(item)`` tells how many times in a row it has failed. Limiters compose: the
default for controllers is the slower of a per-item exponential backoff and an overall token
bucket, so one broken object backs off on its own and a storm of failures cannot flood the
API servers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from typing import Protocol

__all__ = [
    "BucketLimiter",
    "ItemExponentialLimiter",
    "MaxOfLimiter",
    "RateLimiter",
    "default_controller_limiter",
]


class RateLimiter(Protocol):
    """Decides the delay before an item is retried."""

    def when(self, item: Hashable) -> float:
        """Reserve the next try for ``item`` and return the seconds to wait before it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Clear ``item``'s failure history (it succeeded, or will not be retried)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many times ``item`` has been rate-limited since it was last forgotten."""
        ...


class ItemExponentialLimiter:
    """Per-item exponential backoff: ``base * 2**failures``, capped, with proportional jitter.

    The n-th consecutive failure (counting from 0) waits ``base * 2**n`` seconds multiplied by a
    random factor in ``[1 - jitter, 1 + jitter]``; the result never exceeds ``cap``. Jitter keeps
    a batch of items that failed together from retrying in lock step.
    """

    def __init__(
        self,
        base: float = 0.05,
        cap: float = 300.0,
        jitter: float = 0.1,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self._base = base
        self._cap = cap
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        """Count one more failure of ``item`` and return its backoff delay."""
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        # 2**n overflows float long after the cap is reached; stop multiplying early.
        delay = self._cap if n >= 64 else min(self._cap, self._base * 2.0**n)
        if self._jitter:
            delay *= 1.0 + self._jitter * (2.0 * self._rng.random() - 1.0)
        return min(self._cap, delay)

    def forget(self, item: Hashable) -> None:
        """Reset ``item``'s backoff to ``base``."""
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        """Consecutive failures of ``item`` since it was last forgotten."""
        return self._failures.get(item, 0)


class BucketLimiter:
    """An overall token bucket shared by all items (``qps`` refill, ``burst`` capacity).

    Each ``when`` reserves one token, like ``rate.Limiter.Reserve`` in Go: while tokens remain the
    delay is 0; once the bucket is empty the delay is the time until the reserved token will have
    been refilled. The bucket starts full. ``clock`` is a monotonic clock in seconds.
    """

    def __init__(
        self,
        qps: float = 50,
        burst: int = 300,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")
        self._qps = float(qps)
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: Hashable) -> float:
        """Reserve one token and return how long to wait until it is available."""
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        self._tokens = min(self._burst, self._tokens + elapsed * self._qps)
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self._qps

    def forget(self, item: Hashable) -> None:
        """Nothing to forget: the bucket has no per-item state."""

    def num_requeues(self, item: Hashable) -> int:
        """Always 0: the bucket has no per-item state."""
        return 0


class MaxOfLimiter:
    """Combines limiters: the delay is the longest any of them asks for.

    Every limiter is consulted on each ``when`` (so each one reserves its slot), ``forget`` is
    passed to all, and ``num_requeues`` is the largest count any of them reports.
    """

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        """The longest delay of all limiters."""
        return max(limiter.when(item) for limiter in self._limiters)

    def forget(self, item: Hashable) -> None:
        """Forget ``item`` in every limiter."""
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        """The largest requeue count any limiter reports."""
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_limiter() -> MaxOfLimiter:
    """Per-item backoff 0.05 s .. 300 s combined with an overall 50 qps / 300 burst bucket."""
    return MaxOfLimiter(
        ItemExponentialLimiter(base=0.05, cap=300.0),
        BucketLimiter(qps=50, burst=300),
    )
