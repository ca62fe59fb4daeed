"""Per-namespace limits: how many credentials a namespace may hold, how fast it may churn.

A tenant can create pods and Secrets in its own namespace, so nothing it does may cost other
tenants: every managed credential is a Tower user, and every revoked one stays in the
account JWT as a revocation forever (nats-server stops accepting an account JWT over its
max payload). :class:`NamespaceQuota` bounds both per namespace: at most ``max_credentials``
managed Secrets, and user creations plus revocations through a token bucket
(``per_minute``, up to ``burst`` at once).

Several workers create Secrets of one namespace at once, and the informer sees a new Secret
only after it is written: a new Secret therefore *reserves* its slot before its user is
made (:meth:`NamespaceQuota.reserve`) and keeps it until the informer reports it (or the
attempt fails, or ``reservation_ttl`` passes).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["NamespaceQuota"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class _Namespace:
    secrets: set[str] = field(default_factory=set)
    reserved: dict[str, float] = field(default_factory=dict)


class NamespaceQuota:
    """Counts managed Secrets per namespace and rations user changes per namespace."""

    def __init__(
        self,
        *,
        max_credentials: int = 500,
        per_minute: float = 60.0,
        burst: int = 200,
        reservation_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        memory: int = 65536,
    ) -> None:
        self.max_credentials = max_credentials
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._reservation_ttl = reservation_ttl
        self._clock = clock
        self._memory = memory
        self._namespaces: dict[str, _Namespace] = {}
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _ns(self, namespace: str) -> _Namespace:
        return self._namespaces.setdefault(namespace, _Namespace())

    def secret_added(self, namespace: str, name: str) -> int:
        """A managed Secret appeared (its reservation is used up); the namespace's count."""
        ns = self._ns(namespace)
        ns.secrets.add(name)
        ns.reserved.pop(name, None)
        return len(ns.secrets)

    def secret_removed(self, namespace: str, name: str) -> int:
        """A managed Secret is gone (or lost our label); the namespace's count."""
        ns = self._ns(namespace)
        ns.secrets.discard(name)
        count = len(ns.secrets)
        if not count and not ns.reserved:
            del self._namespaces[namespace]
        return count

    def reserve(self, namespace: str, name: str) -> bool:
        """Hold a slot for a new managed Secret ``name``; False when the namespace is full."""
        ns = self._ns(namespace)
        if name in ns.secrets:
            return True
        now = self._clock()
        ns.reserved = {k: t for k, t in ns.reserved.items() if now - t < self._reservation_ttl}
        if name not in ns.reserved and len(ns.secrets) + len(ns.reserved) >= self.max_credentials:
            return False
        ns.reserved[name] = now
        return True

    def release(self, namespace: str, name: str) -> None:
        """Give a reserved slot back (the Secret was not written)."""
        ns = self._namespaces.get(namespace)
        if ns is not None:
            ns.reserved.pop(name, None)

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
