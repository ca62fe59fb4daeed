"""What turns informer events and the passing of time into credential work.

* :func:`consumer_handler` / :func:`secret_handler`: informer handlers that map each event to
  the Secret keys it touches (a relabelled pod touches its old and its new Secret) and keep
  the reconciler's memory of deleted Secrets.
* :class:`Resync`: every resync interval (or on SIGHUP / :meth:`Resync.trigger`) sweep
  orphaned users, then queue every known Secret; a triggered pass makes each Secret verify
  against Tower, a periodic one lets each decide from its last verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nats_tower_operator.kube import Handler
from nats_tower_operator.reconcile import Request
from nats_tower_operator.reconcilers.consumers import ConsumerIndex
from nats_tower_operator.reconcilers.credential import CredentialReconciler
from nats_tower_operator.reconcilers.quota import NamespaceQuota
from nats_tower_operator.reconcilers.sweep import OrphanSweeper
from nats_tower_operator.tower import CredentialIssuer

__all__ = ["Resync", "consumer_handler", "secret_handler"]

log = logging.getLogger(__name__)

Enqueue = Callable[[Request], None]


def consumer_handler(
    index: ConsumerIndex, enqueue: Enqueue, *, kind: str, api_version: str
) -> Handler:
    """Handler of a pod or NACK Account informer."""

    def handle(event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        # The index knows each object's previous Secret: a relabel touches both keys.
        for request in index.observe(kind, api_version, event, obj):
            enqueue(request)

    return handle


def secret_handler(
    reconciler: CredentialReconciler,
    enqueue: Enqueue,
    quota: NamespaceQuota,
    *,
    on_count: Callable[[str, int], None] | None = None,
) -> Handler:
    """Handler of the managed-Secret informer; ``on_count(namespace, n)`` for metrics."""

    def handle(event: str, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        name = str(meta.get("name", ""))
        if event in ("ADDED", "DELETED"):
            if event == "ADDED":
                count = quota.secret_added(namespace, name)
            else:
                count = quota.secret_removed(namespace, name)
            if on_count is not None:
                on_count(namespace, count)
        if event == "DELETED":
            reconciler.secret_deleted(obj)
        enqueue(Request(namespace, name))

    return handle


class Resync:
    """A runnable: periodic (and on-demand) sweep and re-queue of every Secret."""

    name = "resync"

    def __init__(
        self,
        *,
        interval: float,
        sweeper: OrphanSweeper,
        reconciler: CredentialReconciler,
        issuer: CredentialIssuer,
        keys: Callable[[], Iterable[Request]],
        enqueue: Enqueue,
    ) -> None:
        self._interval = interval
        self._sweeper = sweeper
        self._reconciler = reconciler
        self._issuer = issuer
        self._keys = keys
        self._enqueue = enqueue
        self._wake = asyncio.Event()
        self._verify_all = False

    def trigger(self) -> None:
        """Run a verifying pass now."""
        self._verify_all = True
        self._wake.set()

    def enqueue_all(self, *, verify: bool) -> None:
        """Queue every known Secret key; with ``verify`` each is checked against Tower."""
        self._issuer.invalidate()
        if verify:
            self._reconciler.force_resync()
        keys = set(self._keys())
        for key in keys:
            self._enqueue(key)
        log.info("resync", extra={"keys": len(keys), "verify": verify})

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep and re-queue every interval and on each trigger, until ``stop``."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.trigger)
        try:
            while not stop.is_set():
                waits = {asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())}
                await asyncio.wait(
                    waits,
                    timeout=self._interval if self._interval > 0 else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in waits:
                    task.cancel()
                if stop.is_set():
                    break
                verify, self._verify_all = self._verify_all, False
                self._wake.clear()
                await self._sweeper.sweep()
                self.enqueue_all(verify=verify)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
