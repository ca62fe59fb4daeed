"""Per-namespace limits: how many credentials a namespace may hold, how fast it may churn.

A tenant can create pods and Secrets in its own namespace, so nothing it does may cost other
tenants: every managed credential is a Tower user, and every revoked one stays in the
account JWT as a revocation forever (nats-server stops accepting an account JWT over its
max payload). :class:`NamespaceQuota` bounds both per namespace: at most ``max_credentials``
managed Secrets, and user creations plus revocations through a token bucket
(``per_minute``, up to ``burst`` at once).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NamespaceQuota"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class NamespaceQuota:
    """Counts managed Secrets per namespace and rations user changes per namespace."""

    def __init__(
        self,
        *,
        max_credentials: int = 500,
        per_minute: float = 60.0,
        burst: int = 200,
        clock: Callable[[], float] = time.monotonic,
        memory: int = 65536,
    ) -> None:
        self.max_credentials = max_credentials
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._memory = memory
        self._secrets: dict[str, int] = {}
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def secret_added(self, namespace: str) -> int:
        """Count one more managed Secret; the namespace's new count."""
        count = self._secrets.get(namespace, 0) + 1
        self._secrets[namespace] = count
        return count

    def secret_removed(self, namespace: str) -> int:
        """Count one managed Secret less; the namespace's new count."""
        count = max(self._secrets.get(namespace, 0) - 1, 0)
        if count:
            self._secrets[namespace] = count
        else:
            self._secrets.pop(namespace, None)
        return count

    def full(self, namespace: str) -> bool:
        """Whether a new managed Secret would exceed the namespace's quota."""
        return self._secrets.get(namespace, 0) >= self.max_credentials

    def take(self, namespace: str) -> float:
        """Spend one user change; 0 when allowed, else the seconds until one is."""
        now = self._clock()
        bucket = self._buckets.get(namespace)
        if bucket is None:
            bucket = self._buckets[namespace] = _Bucket(self._burst, now)
            if len(self._buckets) > self._memory:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(namespace)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate if self._rate > 0 else float("inf")
