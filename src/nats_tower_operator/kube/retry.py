"""The client's retry policy (pure): which failures to retry, and how long to wait."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import KubeConnectionError, KubeError, ServerError, TooManyRequests

__all__ = ["RetryPolicy", "backoff_delay"]


def backoff_delay(attempt: int, *, base: float, cap: float, rand: random.Random) -> float:
    """Capped exponential backoff with jitter: in [d/2, d] where d = min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * 2.0 ** max(0, attempt))
    return ceiling * (0.5 + rand.random() / 2)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for API requests.

    * 429 is retried for every verb (the server did not process the request), waiting
      ``Retry-After`` (capped at ``retry_after_cap``) or the backoff when absent;
    * connection errors are retried for reads, and for writes only when the request never
      left the client (connect failures, pool timeouts);
    * 5xx is retried for reads only: a failed write is the caller's business;
    * everything else is returned to the caller at once.
    """

    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
    retry_after_cap: float = 30.0

    def delay(
        self, error: KubeError, *, attempt: int, is_read: bool, rand: random.Random
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        ``attempt`` counts the attempts made so far (1 after the first failure).
        """
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, TooManyRequests):
            pass
        elif isinstance(error, KubeConnectionError):
            if not is_read and error.request_sent:
                return None
        elif isinstance(error, ServerError):
            if not is_read:
                return None
        else:
            return None
        if error.retry_after is not None:
            return min(error.retry_after, self.retry_after_cap)
        return backoff_delay(attempt - 1, base=self.backoff_base, cap=self.backoff_cap, rand=rand)
